// The replay player's clock: where in the match we are (a fractional tick), playing or
// paused, at a speed; and the share link's `t` (a tick) and `p` (the followed player).

/** The speeds offered, as multiples of real time. */
export const SPEEDS = Object.freeze([0.25, 0.5, 1, 2, 4, 8]);

export class Playback {
  /**
   * @param first, last the first and last tick of the match's patches
   * @param simHz ticks per second of the match
   */
  constructor(first, last, simHz) {
    this.first = first;
    this.last = last;
    this.simHz = simHz;
    this.speed = 1;
    this.playing = false;
    this.anchorTick = first; // the tick at `anchorAt` (ms, performance.now's clock)
    this.anchorAt = 0;
  }

  clamp(tick) {
    const t = Number(tick);
    return Number.isFinite(t) ? Math.min(this.last, Math.max(this.first, t)) : this.first;
  }

  /** The tick at time `now` (ms); the clock stops at the last tick. */
  tick(now) {
    if (!this.playing) return this.anchorTick;
    const t = this.anchorTick + ((now - this.anchorAt) * this.simHz * this.speed) / 1000;
    return t >= this.last ? this.last : t;
  }

  /** Whether the clock has reached the end. */
  ended(now) {
    return this.tick(now) >= this.last;
  }

  play(now) {
    if (this.playing) return;
    this.anchorTick = this.anchorTick >= this.last ? this.first : this.anchorTick; // again from the start
    this.anchorAt = now;
    this.playing = true;
  }

  pause(now) {
    if (!this.playing) return;
    this.anchorTick = this.tick(now);
    this.anchorAt = now;
    this.playing = false;
  }

  seek(tick, now) {
    this.anchorTick = this.clamp(tick);
    this.anchorAt = now;
  }

  /** One of SPEEDS (another value: the nearest of them). */
  setSpeed(speed, now) {
    const s = Number(speed);
    const best = SPEEDS.reduce((a, b) => (Math.abs(b - s) < Math.abs(a - s) ? b : a), 1);
    this.anchorTick = this.tick(now);
    this.anchorAt = now;
    this.speed = best;
  }
}

/** `t` (a tick) and `p` (a player id) from a page address's query or fragment
 * (`?t=1200&p=3` or `#t=1200`); each null when absent or not a whole number. */
export function parseShare(href) {
  let url;
  try { url = new URL(href); } catch (e) { return { tick: null, player: null }; }
  const hash = new URLSearchParams(url.hash.replace(/^#/, ""));
  const get = (k) => {
    const v = url.searchParams.get(k) ?? hash.get(k);
    return v !== null && /^\d{1,9}$/.test(v) ? Number(v) : null;
  };
  return { tick: get("t"), player: get("p") };
}

/** The address that opens this replay at `tick` (following `player` unless 0). */
export function shareLink(href, tick, player = 0) {
  const url = new URL(href);
  url.hash = "";
  url.search = "";
  url.searchParams.set("t", String(Math.max(0, Math.round(tick))));
  if (player) url.searchParams.set("p", String(player));
  return url.href;
}

/** `m:ss` of a tick count. */
export function clockText(ticks, simHz) {
  const s = Math.max(0, Math.floor(ticks / simHz));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}
