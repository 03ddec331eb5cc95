// Client-side prediction of the own player's movement, with reconciliation.
//
// `Mover.step` is an exact port of engine/arena.py `Arena._move` (integer 1/10 units, the
// same truncation, bounds and wall push-out), so a replay from the server's position gives
// the server's answer whenever the client's guess of which tick applied which input holds.
//
// Timing model: the client runs its own tick counter at `sim_hz`. Each local tick it may
// send an input, then moves with the controls of the last input sent, and records
// (tick, seq, mx, my). An input sent at local tick L is applied by the server at some
// server tick S; `offset = S - L` is learned whenever the player's `ack` advances (the
// first patch showing the new ack bounds S from above). On every patch of server tick T
// the prediction restarts from the server's position and replays the recorded local
// ticks after `T - offset`.

export const Q = 10; // wire units per world unit

/** Movement rules of one arena, from `welcome.config`. */
export class Mover {
  constructor(config) {
    this.radius = config.player_radius * Q;
    this.stepLength = config.player_step
      ?? Math.round((config.player_speed * Q) / config.sim_hz);
    this.width = config.width * Q;
    this.height = config.height * Q;
    this.walls = (config.walls || []).map(([x, y, w, h]) => [x * Q, y * Q, w * Q, h * Q]);
  }

  /** One tick of movement from (x, y) with move vector (mx, my) in [-100, 100]. */
  move(x0, y0, mx, my) {
    if (!mx && !my) return [x0, y0];
    const s = this.stepLength;
    let x = x0 + Math.trunc((mx * s) / 100);
    let y = y0 + Math.trunc((my * s) / 100);
    const r = this.radius, W = this.width, H = this.height;
    x = x < r ? r : (x > W - r ? W - r : x);
    y = y < r ? r : (y > H - r ? H - r : y);
    const r2 = r * r;
    for (let pass = 0; pass < 2; pass++) { // two passes settle corners where two walls meet
      let moved = false;
      for (const [wx, wy, ww, wh] of this.walls) {
        if (x + r <= wx || x - r >= wx + ww || y + r <= wy || y - r >= wy + wh) continue;
        const qx = x < wx ? wx : (x > wx + ww ? wx + ww : x);
        const qy = y < wy ? wy : (y > wy + wh ? wy + wh : y);
        const dx = x - qx, dy = y - qy;
        const d2 = dx * dx + dy * dy;
        if (d2 >= r2) continue;
        moved = true;
        if (d2 === 0) { // centre on or inside the rectangle: leave by the nearest side
          const left = x - wx, right = wx + ww - x, up = y - wy, down = wy + wh - y;
          const m = Math.min(left, right, up, down);
          if (m === left) x = wx - r;
          else if (m === right) x = wx + ww + r;
          else if (m === up) y = wy - r;
          else y = wy + wh + r;
        } else { // push out along the normal, rounding away from the wall
          const d = Math.sqrt(d2);
          x = dx > 0 ? qx + Math.ceil((dx * r) / d) : qx + Math.floor((dx * r) / d);
          y = dy > 0 ? qy + Math.ceil((dy * r) / d) : qy + Math.floor((dy * r) / d);
        }
      }
      if (!moved) break;
    }
    x = x < r ? r : (x > W - r ? W - r : x);
    y = y < r ? r : (y > H - r ? H - r : y);
    return [x, y];
  }
}

/** Clamp like the engine's `clamp_move`: each axis to [-100, 100], length to 100. */
export function clampMove(mx, my) {
  mx = mx < -100 ? -100 : (mx > 100 ? 100 : mx);
  my = my < -100 ? -100 : (my > 100 ? 100 : my);
  const n2 = mx * mx + my * my;
  if (n2 > 10000) {
    const n = Math.floor(Math.sqrt(n2)); // math.isqrt for these small ints
    mx = Math.trunc((mx * 100) / n);
    my = Math.trunc((my * 100) / n);
  }
  return [mx, my];
}

const HISTORY = 256; // local ticks kept for replay (8.5 s at 30 Hz)

/** The own player's predicted position (1/10 units), reconciled on every patch. */
export class Prediction {
  constructor(mover) {
    this.mover = mover;
    this.history = []; // {tick, seq, mx, my}: controls in effect at each local tick
    this.sent = []; // {seq, tick}: inputs not yet seen acked
    this.offset = null; // server tick - local tick for the same input
    this.x = 0;
    this.y = 0;
    this.valid = false; // false until the first server position (and while dead)
    this.lastAck = 0;
    this.lastPatchTick = -1;
    this.corrections = 0; // reconciliations that moved the prediction (for the debug HUD)
    this.lastError = 0; // size of the last correction, 1/10 units
  }

  /** Record an input sent at local tick `tick`. */
  sentInput(seq, tick) {
    this.sent.push({ seq, tick });
    if (this.sent.length > HISTORY) this.sent.shift();
  }

  /** Advance one local tick with the controls of the last input sent. */
  tick(tick, seq, mx, my, alive) {
    if (!alive) { mx = 0; my = 0; }
    this.history.push({ tick, seq, mx, my });
    if (this.history.length > HISTORY) this.history.shift();
    if (this.valid) [this.x, this.y] = this.mover.move(this.x, this.y, mx, my);
  }

  /**
   * A patch of server tick `serverTick` showing the own player at (x, y) with `ack`.
   * Returns the correction applied (predicted before minus after), in 1/10 units.
   */
  reconcile(serverTick, x, y, ack, alive) {
    if (ack > this.lastAck) {
      const input = this.sent.find((s) => s.seq === ack);
      if (input) this.offset = serverTick - input.tick;
      this.sent = this.sent.filter((s) => s.seq > ack);
      this.lastAck = ack;
    }
    this.lastPatchTick = serverTick;
    const beforeX = this.x, beforeY = this.y, wasValid = this.valid;
    if (!alive) {
      this.valid = false;
      this.x = x; this.y = y;
      return [0, 0];
    }
    let px = x, py = y;
    if (this.offset !== null) {
      const from = serverTick - this.offset; // local ticks after this one are unseen by T
      for (const h of this.history) {
        if (h.tick > from) [px, py] = this.mover.move(px, py, h.mx, h.my);
      }
    }
    this.x = px; this.y = py;
    this.valid = true;
    if (!wasValid) return [0, 0];
    const ex = beforeX - px, ey = beforeY - py;
    if (ex || ey) {
      this.corrections++;
      this.lastError = Math.hypot(ex, ey);
    }
    return [ex, ey];
  }

  /** Forget the timing after a reconnect (the server's tick keeps going, ours restarts). */
  reset() {
    this.sent = [];
    this.offset = null;
    this.valid = false;
  }
}
