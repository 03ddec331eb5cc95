// Keyboard, mouse and touch into one control state, which each game's browser module
// maps to its input values (`input(controls, view)`).
//
// Offered to every game: the keys held (`keys`, by `KeyboardEvent.code`), a move vector
// (WASD or arrows, eight directions, diagonals at 71; or the touch stick), the pointer,
// and "action" (left button, Space, or a touch on the right half held; a press between two
// sends is latched in `clicked` until the shell sends the next input).
// Touch: a virtual stick on the left half of the canvas, a touch on the right half aims
// there and acts while held.

const KEYS = {
  KeyW: "up", ArrowUp: "up", KeyS: "down", ArrowDown: "down",
  KeyA: "left", ArrowLeft: "left", KeyD: "right", ArrowRight: "right",
};
const STICK_RADIUS = 60; // css pixels of stick travel for a full-speed move

export class Controls {
  constructor(canvas) {
    this.canvas = canvas;
    this.held = { up: false, down: false, left: false, right: false };
    this.keys = new Set(); // KeyboardEvent.code of every key held
    this.pointer = null; // {x, y} in canvas css pixels, for aiming
    this.mouseDown = false;
    this.spaceDown = false;
    this.clicked = false; // a press since the last input was sent: never lost
    this.stick = null; // {id, x0, y0, x, y} touch stick
    this.aimTouch = null; // touch id aiming/firing on the right half
    this.usedTouch = false;
    this.listeners = [];
    this.bind();
  }

  on(target, type, fn, opts) {
    target.addEventListener(type, fn, opts);
    this.listeners.push([target, type, fn, opts]);
  }

  destroy() {
    for (const [t, type, fn, opts] of this.listeners) t.removeEventListener(type, fn, opts);
    this.listeners = [];
  }

  bind() {
    const c = this.canvas;
    this.on(window, "keydown", (e) => {
      this.keys.add(e.code);
      if (KEYS[e.code]) { this.held[KEYS[e.code]] = true; e.preventDefault(); }
      if (e.code === "Space") { this.spaceDown = true; this.clicked = true; e.preventDefault(); }
    });
    this.on(window, "keyup", (e) => {
      this.keys.delete(e.code);
      if (KEYS[e.code]) this.held[KEYS[e.code]] = false;
      if (e.code === "Space") this.spaceDown = false;
    });
    this.on(window, "blur", () => { // keys released while unfocused never send keyup
      for (const k in this.held) this.held[k] = false;
      this.keys.clear();
      this.mouseDown = this.spaceDown = false;
    });
    this.on(c, "mousemove", (e) => { this.pointer = this.local(e); });
    this.on(c, "mousedown", (e) => {
      if (e.button !== 0) return;
      this.pointer = this.local(e);
      this.mouseDown = true;
      this.clicked = true;
    });
    this.on(window, "mouseup", (e) => { if (e.button === 0) this.mouseDown = false; });
    this.on(c, "contextmenu", (e) => e.preventDefault());
    this.on(c, "touchstart", (e) => this.touch(e, true), { passive: false });
    this.on(c, "touchmove", (e) => this.touch(e, false), { passive: false });
    this.on(c, "touchend", (e) => this.touchEnd(e), { passive: false });
    this.on(c, "touchcancel", (e) => this.touchEnd(e), { passive: false });
  }

  local(e) {
    const r = this.canvas.getBoundingClientRect();
    return { x: e.clientX - r.left, y: e.clientY - r.top };
  }

  touch(e, start) {
    e.preventDefault();
    this.usedTouch = true;
    const half = this.canvas.getBoundingClientRect().width / 2;
    for (const t of e.changedTouches) {
      const p = this.local(t);
      if (start && p.x < half && !this.stick) {
        this.stick = { id: t.identifier, x0: p.x, y0: p.y, x: p.x, y: p.y };
      } else if (this.stick && t.identifier === this.stick.id) {
        this.stick.x = p.x;
        this.stick.y = p.y;
      } else if (start && p.x >= half && this.aimTouch === null) {
        this.aimTouch = t.identifier;
        this.pointer = p;
        this.clicked = true;
      } else if (t.identifier === this.aimTouch) {
        this.pointer = p;
      }
    }
  }

  touchEnd(e) {
    e.preventDefault();
    for (const t of e.changedTouches) {
      if (this.stick && t.identifier === this.stick.id) this.stick = null;
      if (t.identifier === this.aimTouch) this.aimTouch = null;
    }
  }

  /** The move vector in [-100, 100]^2 (length at most 100). */
  move() {
    if (this.stick) {
      const dx = this.stick.x - this.stick.x0, dy = this.stick.y - this.stick.y0;
      const len = Math.hypot(dx, dy);
      if (len < 8) return [0, 0];
      const k = Math.min(1, len / STICK_RADIUS) * 100 / len;
      return [Math.trunc(dx * k), Math.trunc(dy * k)];
    }
    const h = this.held;
    const x = (h.right ? 1 : 0) - (h.left ? 1 : 0);
    const y = (h.down ? 1 : 0) - (h.up ? 1 : 0);
    if (x && y) return [x * 71, y * 71];
    return [x * 100, y * 100];
  }

  /** Fire is held (button, Space or aiming touch), or was clicked since the last send. */
  firing() {
    return this.mouseDown || this.spaceDown || this.aimTouch !== null || this.clicked;
  }
}

/** Aim in integer milliradians in [-3142, 3142] from a direction vector. */
export function aimOf(dx, dy) {
  if (!dx && !dy) return 0;
  const a = Math.round(Math.atan2(dy, dx) * 1000);
  return a > 3142 ? 3142 : (a < -3142 ? -3142 : a);
}
