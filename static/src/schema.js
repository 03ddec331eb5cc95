// The game's schema from `welcome.config.schema` (docs/protocol.md): entity kinds with
// named fields, events, input fields and result columns. Everything the shell knows about
// a game's state comes from here; it never assumes a kind number or a field position.
import { EV_JOINED, EV_LEFT, EV_MATCH_END } from "./codec.js";

// The room's own events (codes 1..15), the same for every game.
const ROOM_EVENTS = [
  { code: EV_JOINED, name: "joined", fields: ["player", "name"] },
  { code: EV_LEFT, name: "left", fields: ["player"] },
  { code: EV_MATCH_END, name: "match_end", fields: ["reason", "results"] },
];

// Common leading columns of a match_end results row; the game's columns follow.
const RESULT_FIELDS = ["playerId", "userId", "name", "score", "placement", "bot"];

export class SchemaError extends Error {}

/** One entity kind: field names, their wire indexes (the kind is index 0), what to
 * interpolate, and where a player's `ack` is. */
export class Kind {
  constructor({ kind, name, fields, interpolate = [], ack = null }) {
    if (!Number.isInteger(kind) || !Array.isArray(fields)) throw new SchemaError(`bad entity kind ${name}`);
    this.kind = kind;
    this.name = String(name);
    this.fields = fields.map(String);
    this.index = Object.fromEntries(this.fields.map((f, i) => [f, i + 1]));
    this.interpolate = (interpolate || []).map((f) => this.index[f]).filter(Number.isInteger);
    this.ack = ack && Number.isInteger(this.index[ack]) ? this.index[ack] : null;
  }

  /** The named fields of a wire entity `[kind, ...fields]`. */
  named(e) {
    const out = {};
    for (let i = 0; i < this.fields.length; i++) out[this.fields[i]] = e[i + 1];
    return out;
  }
}

export class Schema {
  /** @param raw `welcome.config.schema` ({entities, events, inputs, results}) */
  constructor(raw) {
    if (!raw || typeof raw !== "object" || !Array.isArray(raw.entities)) {
      throw new SchemaError("welcome.config has no schema");
    }
    this.kinds = new Map(raw.entities.map((k) => [k.kind, new Kind(k)]));
    this.events = new Map();
    for (const e of [...ROOM_EVENTS, ...(raw.events || [])]) {
      this.events.set(e.code, { code: e.code, name: String(e.name), fields: (e.fields || []).map(String) });
    }
    this.inputs = (raw.inputs || []).map((f) => ({
      name: String(f.name), lo: f.lo, hi: f.hi, wrap: Boolean(f.wrap),
    }));
    this.results = (raw.results || []).map((r) => ({ name: String(r.name), label: String(r.label ?? r.name) }));
  }

  kind(k) {
    return this.kinds.get(k) || null;
  }

  /** Kind name of a wire entity ("" if the schema does not know it). */
  kindName(e) {
    const k = this.kinds.get(e[0]);
    return k ? k.name : "";
  }

  /** The field index of the `ack` of entity `e`, or null if its kind has none. */
  ackIndex(e) {
    const k = this.kinds.get(e[0]);
    return k ? k.ack : null;
  }

  /** An event `[code, ...]` as `{code, type, data: {named fields}}` (type: the event's
   * name, "" for a code the schema does not know, whose fields are `data.args`);
   * match_end's results become objects (see readResult). */
  readEvent(e) {
    const spec = this.events.get(e[0]);
    if (!spec) return { code: e[0], type: "", data: { args: e.slice(1) } };
    const data = {};
    spec.fields.forEach((f, i) => { data[f] = e[i + 1]; });
    if (spec.code === EV_MATCH_END) {
      data.results = Array.isArray(data.results)
        ? data.results.filter(Array.isArray).map((r) => this.readResult(r)) : [];
    }
    return { code: spec.code, type: spec.name, data };
  }

  /** A results row `[player_id, user_id, name, score, placement, bot, *stats]` as
   * `{playerId, userId, name, score, placement, bot, stats: {column: value}}`. */
  readResult(r) {
    const out = {};
    RESULT_FIELDS.forEach((f, i) => { out[f] = r[i]; });
    out.name = String(out.name ?? "");
    out.bot = Boolean(out.bot);
    out.stats = {};
    this.results.forEach((c, i) => { out.stats[c.name] = r[RESULT_FIELDS.length + i]; });
    return out;
  }

  /** Input values clamped into their declared ranges (wrapped for `wrap` fields), as the
   * node does; missing values are 0. */
  clamp(values) {
    return this.inputs.map((f, i) => {
      let v = Math.trunc(Number(values[i]) || 0);
      if (f.wrap) {
        const span = f.hi - f.lo + 1;
        v = ((((v - f.lo) % span) + span) % span) + f.lo;
      } else {
        v = v < f.lo ? f.lo : (v > f.hi ? f.hi : v);
      }
      return v;
    });
  }
}
