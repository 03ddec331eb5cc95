// The state the node sends, kept as a short buffer of patches for interpolation.
//
// Other players are drawn `delay` ms in the past, between the two buffered patches that
// surround that moment, so they move smoothly although patches arrive at 15-20 Hz with
// jitter. The present server tick is estimated from patch arrival times: the estimate
// follows the earliest arrivals at once and later ones slowly, so one late patch does not
// pull the whole picture back.
import {
  applyDelta, PLAYER, PROJECTILE, P_X, P_Y, P_AIM, PR_X0, PR_Y0, PR_VX, PR_VY, PR_BORN,
} from "./codec.js";

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

/** Linear interpolation of angles in milliradians, the short way round. */
export function lerpAim(a, b, f) {
  let d = b - a;
  if (d > 3142) d -= 6283;
  else if (d < -3142) d += 6283;
  return a + d * f;
}

/**
 * What to draw at fractional tick `t`: players interpolated between the surrounding
 * patches (others' discrete fields from the newer one), projectiles extrapolated from
 * their launch, pickups as they are. Positions in world units.
 */
export function interpolate(snapshots, t) {
  const ab = snapshots.around(t);
  const players = [], projectiles = [], pickups = [];
  if (!ab) return { players, projectiles, pickups, tick: t, clock: 0 };
  const { a, b, f } = ab;
  for (const [id, e] of b.entities) {
    if (e[0] === PLAYER) {
      const o = a.entities.get(id);
      const old = o && o[0] === PLAYER ? o : e;
      // a jump of more than 100 units in one patch is a respawn: no sliding across the map
      const teleport = Math.abs(e[P_X] - old[P_X]) + Math.abs(e[P_Y] - old[P_Y]) > 1000;
      const k = teleport ? (f < 0.5 ? 0 : 1) : f;
      players.push({
        id, fields: e,
        x: (old[P_X] + (e[P_X] - old[P_X]) * k) / 10,
        y: (old[P_Y] + (e[P_Y] - old[P_Y]) * k) / 10,
        aim: lerpAim(old[P_AIM], e[P_AIM], f),
      });
    } else if (e[0] === PROJECTILE) {
      projectiles.push(projectileAt(id, e, t));
    } else {
      pickups.push({ id, fields: e, x: e[1] / 10, y: e[2] / 10, sort: e[3] });
    }
  }
  // projectiles that vanished in b (a hit, a wall) fly on until b's tick
  for (const [id, e] of a.entities) {
    if (e[0] === PROJECTILE && !b.entities.has(id) && t < b.tick) projectiles.push(projectileAt(id, e, t));
  }
  const clock = Math.max(0, a.clock - (t - a.tick));
  return {
    players, pickups, tick: t, clock,
    projectiles: projectiles.filter((p) => p.age >= 0),
  };
}

export function projectileAt(id, e, t) {
  const n = t - e[PR_BORN];
  return {
    id, owner: e[6], age: n,
    x: (e[PR_X0] + e[PR_VX] * n) / 10, y: (e[PR_Y0] + e[PR_VY] * n) / 10,
    vx: e[PR_VX], vy: e[PR_VY],
  };
}
