// A replay on a canvas, drawn by the game's own browser module (the same `draw` the live
// client uses): a frames file's timeline (frames.js), the playback clock (playback.js),
// interpolation between the patches around the drawn tick (the shell's `interpolate`), the
// followed player's view (the module is made for that player, as for a live player), the
// game's events as the drawn tick reaches them, and the scoreboard as it was at that tick.
// No DOM but the canvas: replay.js binds the page's controls to it.
import { GameLoadError, createGame, loadGame } from "./games.js";
import { makeKit } from "./kit.js";
import { Playback, clockText } from "./playback.js";
import { interpolate } from "./snapshots.js";
import { FONT, drawMessage, fitCanvas, fitWorld } from "./render.js";

const now = () => performance.now();

export class ReplaySession {
  /**
   * @param canvas the <canvas> to draw on (getContext("2d"), clientWidth/Height)
   * @param timeline a frames.js `Timeline`
   * @param opts {loader}: finds a game's module factory by name (default `loadGame`)
   */
  constructor(canvas, timeline, { loader = loadGame } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.timeline = timeline;
    this.loader = loader;
    this.playback = new Playback(timeline.first, timeline.last, timeline.simHz);
    this.factory = null;
    this.game = null;
    this.playerId = 0; // followed player (0: nobody, the whole field as a spectator)
    this.playedTo = null; // the tick events have been played up to (null after a seek)
    this.error = null;
    this.layout = null;
    this.lastView = null;
    this.stats = { seeks: 0, seekMs: 0, maxSeekMs: 0, frames: 0, fps: 0, frameMs: 0 };
    this.window = { n: 0, busy: 0, since: now() };
    this.lastFrame = now();
  }

  /** Load the game's module. Throws `GameLoadError` (with the player's message). */
  async load() {
    const name = this.timeline.game;
    this.factory = await this.loader(name);
    this.follow(this.playerId);
  }

  /** Follow player `id`'s view (0: nobody). The module is made anew for that player. */
  follow(id) {
    const known = this.timeline.players.some((p) => p.id === id);
    this.playerId = known ? id : 0;
    if (!this.factory) return;
    const { config, schema, game } = this.timeline;
    this.game = createGame(this.factory, makeKit({ ...config, schema }, this.playerId), game);
    this.playedTo = null;
  }

  get tick() {
    return this.playback.tick(now());
  }

  play() { this.playback.play(now()); }

  pause() { this.playback.pause(now()); }

  toggle() { if (this.playback.playing) this.pause(); else this.play(); }

  setSpeed(s) { this.playback.setSpeed(s, now()); }

  /** Jump to `tick`: the patch state is rebuilt from its keyframe and drawn at once; the
   * time that takes is measured (stats.seekMs, stats.maxSeekMs). */
  seek(tick) {
    const t0 = now();
    this.playback.seek(tick, t0);
    this.playedTo = null;
    this.timeline.around(this.playback.tick(t0));
    this.frame(t0);
    const ms = now() - t0;
    this.stats.seeks++;
    this.stats.seekMs = Math.round(ms * 100) / 100;
    this.stats.maxSeekMs = Math.max(this.stats.maxSeekMs, this.stats.seekMs);
  }

  /** The scoreboard at the drawn tick (`{tick, rows, final}`). */
  scoreboard() {
    return this.timeline.scoreboardAt(this.tick);
  }

  computeLayout(w, h, dpr) {
    const c = this.timeline.config;
    const tr = this.game && this.game.layout ? this.game.layout(w, h, dpr)
      : fitWorld(w, h, c.width || 1000, c.height || 1000, dpr);
    return { ...tr, dpr };
  }

  /** Draw the frame at time `at` (ms); returns the view the module drew. */
  frame(at = now()) {
    const { w, h, dpr } = fitCanvas(this.canvas);
    const dt = Math.min(0.1, Math.max(0, (at - this.lastFrame) / 1000));
    this.lastFrame = at;
    if (!this.game) {
      drawMessage(this.ctx, w, h, dpr, this.error || "Loading the replay…", [], at / 1000);
      return null;
    }
    const tl = this.timeline;
    const t = this.playback.tick(at);
    if (this.playback.playing && t >= tl.last) this.playback.pause(at);
    const f = interpolate(tl, t, tl.schema, this.game);
    const own = this.playerId ? f.entities.get(this.playerId) || null : null;
    if (own) own.own = true;
    this.layout = this.computeLayout(w, h, dpr);
    const ended = t >= tl.last;
    const view = {
      config: tl.config, schema: tl.schema, playerId: this.playerId,
      phase: ended ? "ended" : "playing", w, h, dpr, time: at / 1000, dt, tick: t,
      clock: f.clock, seconds: f.clock / tl.simHz, entities: f.entities, gone: f.gone, own,
      predicted: false, latest: tl.around(t).b.entities, layout: this.layout, pointer: null,
      touch: null, link: { state: "open", transport: "replay", rtt: null },
    };
    this.playEvents(t, view);
    this.game.draw(this.ctx, view);
    const banner = own && !ended && this.game.banner ? this.game.banner(view) || "" : "";
    drawReplayHud(this.ctx, w, h, dpr, {
      text: `replay · ${clockText(t, tl.simHz)} / ${clockText(tl.last, tl.simHz)} · `
        + `${this.playback.playing ? `${this.playback.speed}x` : "paused"}`,
      banner,
    });
    this.lastView = view;
    this.count(at);
    return view;
  }

  /** The game's events of the patches the clock went through since the last frame
   * (none after a seek: a jump does not replay what it skipped). */
  playEvents(t, view) {
    const from = this.playedTo;
    this.playedTo = t;
    if (from === null || t <= from || !this.game.event) return;
    for (const { ev } of this.timeline.eventsBetween(from, t)) this.game.event(ev, view);
  }

  count(start) {
    const f = this.window;
    const end = now();
    f.n++;
    f.busy += end - start;
    this.stats.frames++;
    if (end - f.since >= 1000) {
      this.stats.fps = Math.round((f.n * 1000) / (end - f.since));
      this.stats.frameMs = Math.round((f.busy / f.n) * 100) / 100;
      f.n = 0; f.busy = 0; f.since = end;
    }
  }

  /** For tests and debugging (`window.__replay.state`). */
  debugState() {
    const tl = this.timeline;
    const t = this.tick;
    const board = tl.scoreboardAt(t);
    const around = tl.around(t);
    const entities = [];
    for (const [id, e] of around.a.entities) {
      const kind = tl.schema.kind(e[0]);
      entities.push({ id, kind: kind ? kind.name : String(e[0]), ...(kind ? kind.named(e) : {}) });
    }
    return {
      phase: this.error ? "error" : (this.game ? (t >= tl.last ? "ended" : "playing") : "loading"),
      game: tl.game, mode: tl.mode, matchId: tl.matchId, tick: t, patchTick: around.a.tick,
      first: tl.first, last: tl.last, simHz: tl.simHz, playing: this.playback.playing,
      speed: this.playback.speed, follow: this.playerId, players: tl.players, entities,
      scoreboard: board.rows, scoreboardTick: board.tick, final: board.final,
      results: tl.results, endReason: tl.reason, truncated: tl.truncated,
      resultColumns: tl.schema.results.map((c) => c.label), error: this.error,
      stats: { ...this.stats },
    };
  }
}

/** The replay's line at the bottom left (where the live client shows its connection) and
 * the followed player's banner from the game (e.g. "respawning"). */
function drawReplayHud(ctx, w, h, dpr, { text, banner }) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.font = `${12 * dpr}px ${FONT}`;
  ctx.fillStyle = "#8ea2c4";
  ctx.fillText(text, 16 * dpr, h - 7 * dpr);
  if (banner) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = `700 ${20 * dpr}px ${FONT}`;
    ctx.fillStyle = "rgba(255,255,255,0.85)";
    ctx.fillText(banner, w / 2, h / 2);
  }
}

export { GameLoadError };
