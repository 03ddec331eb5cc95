// The state the node sends, kept as a short buffer of patches for interpolation.
//
// Other entities are drawn `delay` ms in the past, between the two buffered patches that
// surround that moment, so they move smoothly although patches arrive at 15-20 Hz with
// jitter. The present server tick is estimated from patch arrival times: the estimate
// follows the earliest arrivals at once and later ones slowly, so one late patch does not
// pull the whole picture back.
//
// What is interpolated comes from the game's schema (`interpolate` of each entity kind):
// those fields slide linearly between the two patches around the drawn tick, every other
// field is taken from the newer one. A game may give its own rule per field (an angle
// going the short way round) and a teleport rule (a respawn does not slide).
import { applyDelta } from "./codec.js";

const KEEP_MS = 1500; // buffered patches

export class Snapshots {
  constructor(simHz, patchHz, delayMs = 100) {
    this.simHz = simHz;
    const patchMs = 1000 / Math.min(patchHz, simHz);
    this.delayTicks = (Math.max(delayMs, patchMs * 1.5) * simHz) / 1000;
    this.reset();
  }

  reset() {
    this.list = []; // {tick, clock, entities, at}
    this.offset = null; // server tick - now * simHz / 1000
    this.skipped = 0; // deltas that did not apply (waiting for a keyframe)
  }

  get latest() {
    return this.list.length ? this.list[this.list.length - 1] : null;
  }

  /** A keyframe replaces the state. */
  keyframe(tick, clock, entities, now) {
    this.add(tick, clock, entities, now);
  }

  /** A delta applies only on top of the patch of tick `base` (and only if it fits it).
   * False if it was skipped. */
  delta(msg, now) {
    const last = this.latest;
    if (!last || last.tick !== msg.base) {
      this.skipped++;
      return false;
    }
    let entities;
    try {
      entities = applyDelta(last.entities, msg.added, msg.removed, msg.updated);
    } catch (e) {
      this.skipped++; // does not fit the state we hold: wait for the next keyframe
      return false;
    }
    this.add(msg.tick, msg.clock, entities, now);
    return true;
  }

  add(tick, clock, entities, now) {
    const last = this.latest;
    if (last && tick <= last.tick) this.list = this.list.filter((s) => s.tick < tick);
    this.list.push({ tick, clock, entities, at: now });
    while (this.list.length > 2 && now - this.list[0].at > KEEP_MS) this.list.shift();
    const sample = tick - (now * this.simHz) / 1000;
    if (this.offset === null || Math.abs(sample - this.offset) > this.simHz) {
      this.offset = sample; // first patch, or a jump of more than a second: start over
    } else if (sample > this.offset) {
      this.offset = sample;
    } else {
      this.offset += (sample - this.offset) * 0.02;
    }
  }

  /** Estimated server tick now (fractional). */
  serverTick(now) {
    return this.offset === null ? 0 : this.offset + (now * this.simHz) / 1000;
  }

  /** The (fractional) tick to draw others at. */
  renderTick(now) {
    return this.serverTick(now) - this.delayTicks;
  }

  /** The two patches around tick `t` and the fraction between them. */
  around(t) {
    const l = this.list;
    if (!l.length) return null;
    if (t <= l[0].tick) return { a: l[0], b: l[0], f: 0 };
    for (let i = 1; i < l.length; i++) {
      if (l[i].tick >= t) {
        const a = l[i - 1], b = l[i];
        return { a, b, f: (t - a.tick) / (b.tick - a.tick) };
      }
    }
    const last = l[l.length - 1];
    return { a: last, b: last, f: 0 };
  }
}

/** Linear interpolation of angles in milliradians, the short way round (a `lerp` rule
 * for games whose aim is an angle). */
export function lerpAim(a, b, f) {
  let d = b - a;
  if (d > 3142) d -= 6283;
  else if (d < -3142) d += 6283;
  return a + d * f;
}

/**
 * What to draw at fractional tick `t`, driven by the schema: every entity of the newer
 * patch around `t` as `{id, kind, type, raw, ...named fields}`, its `interpolate` fields
 * between the two patches (held if the entity is new; a jump at the midpoint when
 * `teleport(old, new, kind)` says so), fields with a `lerp` rule by that rule, the others
 * from the newer patch.
 * `gone` holds the entities of the older patch that the newer one no longer
 * has, while `t` is before the newer patch (a shot that hit something, to finish its
 * flight). Values stay in wire units.
 *
 * @param rules {lerp: {field: (a, b, f) => value}, teleport: (oldRaw, newRaw, kind) => bool},
 *   from the game module
 */
export function interpolate(snapshots, t, schema, rules = {}) {
  const ab = snapshots.around(t);
  const entities = new Map();
  const gone = [];
  if (!ab) return { entities, gone, tick: t, clock: 0 };
  const { a, b, f } = ab;
  const teleport = rules.teleport || null;
  const plans = kindPlans(schema, rules.lerp || NO_RULES);
  for (const [id, e] of b.entities) {
    const plan = plans.get(e[0]);
    const v = view(id, e, plan);
    entities.set(id, v);
    if (!plan || f <= 0) continue;
    const slides = plan.slides;
    const n = slides.length;
    if (!n) continue;
    const o = a.entities.get(id);
    if (o === undefined || o[0] !== e[0]) continue;
    const k = teleport !== null && teleport(o, e, plan.kind) ? (f < 0.5 ? 0 : 1) : f;
    for (let s = 0; s < n; s++) {
      const slide = slides[s];
      const i = slide.index;
      const w = slide.jumps ? k : f;
      v[slide.name] = slide.rule ? slide.rule(o[i], e[i], w) : o[i] + (e[i] - o[i]) * w;
    }
  }
  if (t < b.tick) {
    for (const [id, e] of a.entities) {
      if (!b.entities.has(id)) gone.push(view(id, e, plans.get(e[0])));
    }
  }
  const clock = Math.max(0, a.clock - (t - a.tick));
  return { entities, gone, tick: t, clock };
}

/** `{...named fields, id, kind, type, raw}` of a wire entity (the shell's keys win). */
function view(id, e, plan) {
  const v = {};
  if (plan) {
    const fields = plan.kind.fields;
    for (let i = 0; i < fields.length; i++) v[fields[i]] = e[i + 1];
  }
  v.id = id;
  v.kind = e[0];
  v.type = plan ? plan.kind.name : "";
  v.raw = e;
  return v;
}

const NO_RULES = Object.freeze({});
const PLANS = new WeakMap(); // schema -> lerp rules -> plans

/** Per kind: `{kind, slides}`, the fields that slide as {index, name, rule or null, jumps
 * on a teleport}: the schema's `interpolate` fields, then the fields only the game's
 * `lerp` names. */
function kindPlans(schema, lerp) {
  let bySchema = PLANS.get(schema);
  if (!bySchema) PLANS.set(schema, (bySchema = new WeakMap()));
  let plans = bySchema.get(lerp);
  if (plans) return plans;
  plans = new Map();
  for (const [k, kind] of schema.kinds) {
    const slides = kind.interpolate.map((index) => ({
      index, name: kind.fields[index - 1], rule: lerp[kind.fields[index - 1]] || null, jumps: true,
    }));
    for (const name of Object.keys(lerp)) {
      const index = kind.index[name];
      if (index !== undefined && !kind.interpolate.includes(index)) {
        slides.push({ index, name, rule: lerp[name], jumps: false });
      }
    }
    plans.set(k, { kind, slides });
  }
  bySchema.set(lerp, plans);
  return plans;
}
