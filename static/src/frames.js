// A frames file (engine/frames.py, docs/engine.md "Frames files") read in the browser: what
// a spectator of the live match received, patch by patch, with keyframes for seeking. The
// replay player (replay.js) draws it with the game's own browser module.
//
//   const timeline = await readFrames(bytes);   // untrusted bytes -> Timeline, or FramesError
//   timeline.stateAt(timeline.indexAt(tick));   // {tick, clock, entities} of a patch
//
// Seeking is the file's rule: the last keyframe at or before the tick, then the deltas after
// it, in order. The whole file is checked once when it is read (every message decodes,
// every delta applies on the patch before it), so a damaged file is said at once and never
// half-way through watching.
import { Decoder } from "@msgpack/msgpack";
import { DELTA, EVENT, EV_JOINED, EV_MATCH_END, KEYFRAME, applyDelta, decode } from "./codec.js";
import { Schema } from "./schema.js";

/** Largest frames file accepted, decompressed (engine.frames.MAX_FRAMES_BYTES). */
export const MAX_FRAMES_BYTES = 64 << 20;
const CACHE_STATES = 4; // patch states kept (the two being drawn, and the ones just before)

export class FramesError extends Error {}

const docDecoder = new Decoder({
  maxStrLength: 1 << 16, maxBinLength: 1 << 20, maxArrayLength: 1 << 22, maxMapLength: 1 << 16,
});

/** zlib (RFC 1950) bytes inflated by the platform's DecompressionStream, at most `max`. */
export async function inflate(bytes, max = MAX_FRAMES_BYTES) {
  if (typeof DecompressionStream === "undefined") throw new FramesError("this browser cannot inflate the frames file");
  const stream = new Blob([bytes]).stream().pipeThrough(new DecompressionStream("deflate"));
  const reader = stream.getReader();
  const parts = [];
  let size = 0;
  for (;;) {
    let r;
    try {
      r = await reader.read();
    } catch (e) {
      throw new FramesError("the frames file is damaged (not zlib)");
    }
    if (r.done) break;
    size += r.value.length;
    if (size > max) {
      reader.cancel().catch(() => {});
      throw new FramesError(`the frames file is larger than ${max} bytes`);
    }
    parts.push(r.value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

/** The bytes served at /matches/<id>/replay.frames (a zlib stream; or already inflated, as
 * a proxy that honoured `Content-Encoding: deflate` gives it) -> a `Timeline`. */
export async function readFrames(bytes) {
  const data = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  // a zlib stream starts with 0x78 (deflate, 32 KiB window); a msgpack map with 0x8_/0xde/0xdf
  const raw = data.length && (data[0] & 0x0f) === 8 && data[0] >> 4 <= 7 ? await inflate(data) : data;
  let doc;
  try {
    doc = docDecoder.decode(raw);
  } catch (e) {
    throw new FramesError("the frames file is damaged (not msgpack)");
  }
  return new Timeline(doc);
}

const isInt = Number.isInteger;

/** A frames file's map, checked, with its patches ready to seek in. */
export class Timeline {
  constructor(doc) {
    if (!doc || typeof doc !== "object" || doc.format !== "frames") throw new FramesError("not a frames file");
    if (doc.version !== 1) throw new FramesError(`frames file version ${doc.version}: this player reads 1`);
    const { frames, ticks, keyframes, config } = doc;
    if (!Array.isArray(frames) || !Array.isArray(ticks) || frames.length !== ticks.length
      || !frames.length || !frames.every((f) => f instanceof Uint8Array) || !ticks.every(isInt)) {
      throw new FramesError("the frames file has no frames");
    }
    if (!config || typeof config !== "object") throw new FramesError("the frames file has no config");
    try {
      this.schema = new Schema(config.schema);
    } catch (e) {
      throw new FramesError(`the frames file has no game schema (${e.message})`);
    }
    this.config = config;
    this.game = String(doc.game ?? config.game ?? "");
    this.mode = String(doc.mode ?? "");
    this.matchId = String(doc.match_id ?? "");
    this.simHz = Number(config.sim_hz) || 30;
    this.truncated = Boolean(doc.truncated);
    this.end = Array.isArray(doc.end) ? doc.end.map(String) : ["finished", ""];
    this.patches = []; // {tick, clock, msg (keyframe or delta), key: index of its keyframe}
    this.events = []; // {tick, ev}: every event, in order
    this.endEvent = null; // match_end {reason, results}, unless truncated
    const keys = new Set(Array.isArray(keyframes) ? keyframes : []);
    let key = -1, state = null;
    frames.forEach((bytes, i) => {
      let msg;
      try {
        msg = decode(bytes);
      } catch (e) {
        throw new FramesError(`frame ${i} does not decode (${e.message})`);
      }
      if (msg.tick !== ticks[i]) throw new FramesError(`frame ${i} is of tick ${msg.tick}, not ${ticks[i]}`);
      if (msg.type === KEYFRAME) {
        if (!keys.has(i)) throw new FramesError(`frame ${i} is a keyframe not listed as one`);
        key = this.patches.length;
        state = msg.entities;
      } else if (msg.type === DELTA) {
        const prev = this.patches[this.patches.length - 1];
        if (!prev || msg.base !== prev.tick) throw new FramesError(`frame ${i}: a delta without its base patch`);
        try {
          state = applyDelta(state, msg.added, msg.removed, msg.updated);
        } catch (e) {
          throw new FramesError(`frame ${i}: the delta does not apply`);
        }
      } else if (msg.type !== EVENT) {
        throw new FramesError(`frame ${i} is message type ${msg.type}`);
      }
      if (msg.type !== EVENT) {
        const last = this.patches[this.patches.length - 1];
        if (last && msg.tick <= last.tick) throw new FramesError(`frame ${i}: ticks go back`);
        this.patches.push({ tick: msg.tick, clock: msg.clock, msg, key });
      }
      for (const e of msg.events || []) {
        const ev = this.schema.readEvent(e);
        if (ev.code === EV_MATCH_END) this.endEvent = { tick: msg.tick, ...ev.data };
        else this.events.push({ tick: msg.tick, ev });
      }
    });
    if (!this.patches.length || this.patches[0].msg.type !== KEYFRAME) {
      throw new FramesError("the frames file does not start with a keyframe");
    }
    this.first = this.patches[0].tick;
    this.last = this.patches[this.patches.length - 1].tick;
    this.scoreboard = (Array.isArray(doc.scoreboard) ? doc.scoreboard : [])
      .filter((s) => Array.isArray(s) && isInt(s[0]) && Array.isArray(s[1]))
      .map(([tick, rows]) => ({ tick, rows: rows.filter(Array.isArray).map((r) => this.schema.readResult(r)) }));
    this.results = this.endEvent ? this.endEvent.results
      : (Array.isArray(doc.results) ? doc.results.filter(Array.isArray).map((r) => this.schema.readResult(r)) : []);
    this.reason = this.endEvent ? String(this.endEvent.reason ?? "") : (this.end[1] || "");
    this.players = this.findPlayers();
    this.cache = new Map(); // patch index -> {tick, clock, entities}
    this.stats = { applied: 0 }; // deltas applied by stateAt (tests, the bench)
  }

  /** Everyone who played: `[{id, name, bot}]` by player id, from the joins and the results. */
  findPlayers() {
    const byId = new Map();
    for (const { ev } of this.events) {
      if (ev.code === EV_JOINED && isInt(ev.data.player)) {
        byId.set(ev.data.player, { id: ev.data.player, name: String(ev.data.name ?? ""), bot: false });
      }
    }
    const rows = [...this.scoreboard.flatMap((s) => s.rows), ...this.results];
    for (const r of rows) {
      if (isInt(r.playerId)) byId.set(r.playerId, { id: r.playerId, name: r.name, bot: r.bot });
    }
    return [...byId.values()].sort((a, b) => a.id - b.id);
  }

  /** The index of the last patch at or before `tick` (the first patch before it). */
  indexAt(tick) {
    const p = this.patches;
    let lo = 0, hi = p.length - 1;
    if (!(tick >= p[0].tick)) return 0;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (p[mid].tick <= tick) lo = mid; else hi = mid - 1;
    }
    return lo;
  }

  /** `{tick, clock, entities}` of patch `i`: its keyframe, then the deltas after it (or on
   * from a cached patch between the two, when playing forward). */
  stateAt(i) {
    i = Math.max(0, Math.min(this.patches.length - 1, i));
    const hit = this.cache.get(i);
    if (hit) {
      this.cache.delete(i); // most recent last
      this.cache.set(i, hit);
      return hit;
    }
    const p = this.patches[i];
    let from = p.key, entities = null;
    for (const [j, s] of this.cache) { // a cached patch of the same keyframe, before i
      if (j < i && j >= from && this.patches[j].key === p.key) { from = j; entities = s.entities; }
    }
    if (entities === null) entities = this.patches[from].msg.entities;
    for (let j = from + 1; j <= i; j++) {
      const d = this.patches[j].msg;
      entities = applyDelta(entities, d.added, d.removed, d.updated);
      this.stats.applied++;
    }
    const state = { tick: p.tick, clock: p.clock, entities };
    this.cache.set(i, state);
    while (this.cache.size > CACHE_STATES) this.cache.delete(this.cache.keys().next().value);
    return state;
  }

  /** The two patches around fractional tick `t` and the fraction between them (the shape
   * of `Snapshots.around`, so the shell's `interpolate` draws a replay as it draws a match). */
  around(t) {
    const i = this.indexAt(t);
    const a = this.stateAt(i);
    if (i + 1 >= this.patches.length || t <= a.tick) return { a, b: a, f: 0 };
    const b = this.stateAt(i + 1);
    return { a, b, f: (t - a.tick) / (b.tick - a.tick) };
  }

  /** The events of the patches with a tick in (t0, t1], in order. */
  eventsBetween(t0, t1) {
    const out = [];
    for (const e of this.events) { // (a binary search would do; a match has few events)
      if (e.tick > t1) break;
      if (e.tick > t0) out.push(e);
    }
    return out;
  }

  /** The scoreboard as it was at tick `t`: `{tick, rows}` (rows as `Schema.readResult`),
   * the final results once the match is over. */
  scoreboardAt(t) {
    if (t >= this.last && this.endEvent) return { tick: this.last, rows: this.results, final: true };
    const s = this.scoreboard;
    let at = null;
    for (let i = 0; i < s.length && s[i].tick <= t; i++) at = s[i];
    return at ? { ...at, final: false } : { tick: this.first, rows: [], final: false };
  }
}
