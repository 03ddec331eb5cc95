// Client-side prediction of the own player, with reconciliation: the timing is the
// shell's, the movement rule is the game's (its browser module's `predict.step`).
//
// Timing model: the client runs its own tick counter at `sim_hz`. Each local tick it may
// send an input, then steps the own player with the values of the last input sent, and
// records (tick, seq, values). An input sent at local tick L is applied by the server at
// some server tick S; `offset = S - L` is learned whenever the player's `ack` advances
// (the first patch showing the new ack bounds S from above). On every patch of server
// tick T the prediction restarts from the server's state and replays the recorded local
// ticks after `T - offset`. With a step that is an exact port of the game's rule and a
// steady latency, no correction is ever needed.

const HISTORY = 256; // local ticks kept for replay (8.5 s at 30 Hz)

/**
 * The own player's predicted state: an array of integer fields (e.g. `[x, y]` in wire
 * units), reconciled on every patch.
 */
export class Prediction {
  /** @param step (state: number[], values: number[]) => number[], one tick of the game's rule */
  constructor(step) {
    this.step = step;
    this.history = []; // {tick, seq, values}: input values in effect at each local tick
    this.sent = []; // {seq, tick}: inputs not yet seen acked
    this.offset = null; // server tick - local tick for the same input
    this.state = null;
    this.valid = false; // false until the first server state (and while inactive)
    this.lastAck = 0;
    this.lastPatchTick = -1;
    this.corrections = 0; // reconciliations that moved the prediction (for the debug HUD)
    this.lastError = 0; // size of the last correction (Euclidean, wire units)
  }

  /** Record an input sent at local tick `tick`. */
  sentInput(seq, tick) {
    this.sent.push({ seq, tick });
    if (this.sent.length > HISTORY) this.sent.shift();
  }

  /** Advance one local tick with `values` (the last input sent), or none (`null`: the
   * player is inactive, e.g. dead, and does not move). */
  tick(tick, seq, values, active = true) {
    const v = active ? values : null;
    this.history.push({ tick, seq, values: v });
    if (this.history.length > HISTORY) this.history.shift();
    if (this.valid && v) this.state = this.step(this.state, v);
  }

  /**
   * A patch of server tick `serverTick` showing the own player in `state` with `ack`.
   * Returns the correction applied (predicted before minus after, per field).
   */
  reconcile(serverTick, state, ack, active = true) {
    if (ack > this.lastAck) {
      const input = this.sent.find((s) => s.seq === ack);
      if (input) this.offset = serverTick - input.tick;
      this.sent = this.sent.filter((s) => s.seq > ack);
      this.lastAck = ack;
    }
    this.lastPatchTick = serverTick;
    const before = this.state, wasValid = this.valid;
    const zero = state.map(() => 0);
    if (!active) {
      this.valid = false;
      this.state = state.slice();
      return zero;
    }
    let s = state.slice();
    if (this.offset !== null) {
      const from = serverTick - this.offset; // local ticks after this one are unseen by T
      for (const h of this.history) {
        if (h.tick > from && h.values) s = this.step(s, h.values);
      }
    }
    this.state = s;
    this.valid = true;
    if (!wasValid || !before) return zero;
    const err = before.map((v, i) => v - s[i]);
    if (err.some((e) => e !== 0)) {
      this.corrections++;
      this.lastError = Math.hypot(...err);
    }
    return err;
  }

  /** Forget the timing after a reconnect (the server's tick keeps going, ours restarts). */
  reset() {
    this.sent = [];
    this.offset = null;
    this.valid = false;
  }
}
