// The shell's canvas drawing: message screens (queue, connecting, errors), the connection
// line and banners over a game's frame, the touch stick; and the helpers a game's browser
// module gets in its kit (palette, fonts, the world fit). The game draws its own world.

const PALETTE = ["#4fc3f7", "#ff8a65", "#aed581", "#f06292", "#ffd54f", "#9575cd", "#4db6ac",
  "#e57373", "#81c784", "#64b5f6", "#ffb74d", "#ba68c8", "#a1887f", "#90a4ae", "#dce775", "#4dd0e1"];

export const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

/** A colour per player id (16, then they repeat). */
export function playerColor(id) {
  return PALETTE[(id - 1) % PALETTE.length];
}

/** The device pixel ratio used for the canvas (at most 2). */
export function pixelRatio() {
  return Math.min(window.devicePixelRatio || 1, 2);
}

/** Resize the canvas backing store to its css size times the device pixel ratio. */
export function fitCanvas(canvas) {
  const dpr = pixelRatio();
  const w = Math.max(1, Math.round(canvas.clientWidth * dpr));
  const h = Math.max(1, Math.round(canvas.clientHeight * dpr));
  if (canvas.width !== w || canvas.height !== h) {
    canvas.width = w;
    canvas.height = h;
  }
  return { w, h, dpr };
}

/**
 * World-to-canvas transform (canvas px = o + world * scale) fitting a `worldW` x `worldH`
 * world with a margin, 48 css px on top for a HUD line, and `sidebar` css px on the right
 * when the canvas is at least `sidebarFrom` css px wide. The default layout of a game.
 */
export function fitWorld(w, h, worldW, worldH, dpr, { sidebar = 0, sidebarFrom = 1000 } = {}) {
  const margin = 16 * dpr, top = 48 * dpr;
  const side = sidebar && w / dpr >= sidebarFrom ? sidebar * dpr : 0;
  const scale = Math.min((w - side - 2 * margin) / worldW, (h - top - margin) / worldH);
  const ox = margin + (w - side - 2 * margin - worldW * scale) / 2;
  const oy = top + (h - top - margin - worldH * scale) / 2;
  return { scale, ox, oy, dpr, side };
}

/** Draws a message screen (queue, connecting, errors) when there is no game to draw. */
export function drawMessage(ctx, w, h, dpr, title, lines = [], t = 0) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  background(ctx, w, h);
  ctx.fillStyle = "#e8eef7";
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  ctx.font = `600 ${28 * dpr}px ${FONT}`;
  ctx.fillText(title, w / 2, h / 2 - 30 * dpr);
  ctx.font = `${16 * dpr}px ${FONT}`;
  ctx.fillStyle = "#9fb0c8";
  lines.forEach((l, i) => ctx.fillText(l, w / 2, h / 2 + (8 + i * 24) * dpr));
  // a small spinner so waiting never looks frozen
  const r = 14 * dpr, cx = w / 2, cy = h / 2 - 80 * dpr;
  ctx.strokeStyle = "#4fc3f7";
  ctx.lineWidth = 3 * dpr;
  ctx.beginPath();
  ctx.arc(cx, cy, r, t * 4, t * 4 + Math.PI * 1.4);
  ctx.stroke();
}

export function background(ctx, w, h) {
  const g = ctx.createLinearGradient(0, 0, 0, h);
  g.addColorStop(0, "#0b1020");
  g.addColorStop(1, "#111a2e");
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
}

/**
 * Over the game's frame: the connection line (bottom left: link state, ping, transport)
 * and a centre banner (reconnecting, spectating, or the game's own, e.g. "respawning").
 */
export function drawShellHud(ctx, w, h, { dpr, rtt, transport, linkState, banner }) {
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  const s = dpr;
  const ping = rtt === null || rtt === undefined ? "–" : `${rtt} ms`;
  const dot = linkState === "open" ? "#66bb6a" : (linkState === "reconnecting" ? "#ffca28" : "#ef5350");
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.font = `${12 * s}px ${FONT}`;
  ctx.fillStyle = dot;
  ctx.beginPath();
  ctx.arc(16 * s, h - 14 * s, 4 * s, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = "#8ea2c4";
  ctx.fillText(`ping ${ping} · ${transport || "connecting"}`, 26 * s, h - 7 * s);
  if (banner) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = `700 ${22 * s}px ${FONT}`;
    ctx.fillStyle = "rgba(8,12,24,0.6)";
    const tw = ctx.measureText(banner).width + 40 * s;
    roundRect(ctx, w / 2 - tw / 2, h / 2 - 24 * s, tw, 48 * s, 10 * s);
    ctx.fill();
    ctx.fillStyle = "#ffffff";
    ctx.fillText(banner, w / 2, h / 2);
  }
}

/** The touch stick, where a finger holds it (css px). */
export function drawTouch(ctx, touch, dpr) {
  if (!touch || !touch.stick) return;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  const { x0, y0, x, y } = touch.stick;
  ctx.strokeStyle = "rgba(255,255,255,0.3)";
  ctx.lineWidth = 2 * dpr;
  ctx.beginPath();
  ctx.arc(x0 * dpr, y0 * dpr, 60 * dpr, 0, Math.PI * 2);
  ctx.stroke();
  ctx.fillStyle = "rgba(255,255,255,0.35)";
  ctx.beginPath();
  ctx.arc(x * dpr, y * dpr, 22 * dpr, 0, Math.PI * 2);
  ctx.fill();
}

export function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

/** `text` cut with an ellipsis to fit `width` px in the current font. */
export function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  while (text.length > 1 && ctx.measureText(text + "…").width > width) text = text.slice(0, -1);
  return text + "…";
}

/**
 * The in-game HUD a game's module may draw (kit.drawMatchHud): the clock and `subtitle` at
 * the top centre (`cx`), the scoreboard top right (or in the sidebar, `side`), and the
 * event feed under it (or top left). `rows`, in the order shown:
 * `{name, own, color, dim, cells: [string, ...]}`; `header`: the name column's title, then
 * one per cell; `feed`: `{text, ttl, color}` (fading out as `ttl` goes below 1). `s` is
 * the device pixel ratio, `w` the canvas width in pixels.
 */
export function drawMatchHud(ctx, { s, w, cx, side, seconds, subtitle, header, rows, feed }) {
  const secs = Math.max(0, Math.ceil(seconds));
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.font = `700 ${24 * s}px ${FONT}`;
  ctx.fillStyle = secs <= 10 ? "#ff8a80" : "#e8eef7";
  ctx.fillText(`${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`, cx, 8 * s);
  ctx.font = `${12 * s}px ${FONT}`;
  ctx.fillStyle = "#8ea2c4";
  ctx.fillText(subtitle, cx, 34 * s);

  const bw = 220 * s, rh = 20 * s, col = 50 * s, cells = header.length - 1;
  const bx = w - bw - 12 * s, by = side ? 48 * s : 10 * s;
  const cellX = (i) => bx + bw - 12 * s - (cells - 1 - i) * col;
  ctx.fillStyle = "rgba(8,12,24,0.72)";
  roundRect(ctx, bx, by, bw, (rows.length + 1) * rh + 10 * s, 8 * s);
  ctx.fill();
  ctx.font = `600 ${12 * s}px ${FONT}`;
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#8ea2c4";
  ctx.textAlign = "left";
  ctx.fillText(header[0], bx + 12 * s, by + rh / 2 + 5 * s);
  ctx.textAlign = "right";
  header.slice(1).forEach((title, i) => ctx.fillText(title, cellX(i), by + rh / 2 + 5 * s));
  rows.forEach((r, i) => {
    const y = by + (i + 1.5) * rh + 5 * s;
    if (r.own) {
      ctx.fillStyle = "rgba(79,195,247,0.15)";
      ctx.fillRect(bx + 4 * s, y - rh / 2, bw - 8 * s, rh);
    }
    ctx.fillStyle = r.color;
    ctx.beginPath();
    ctx.arc(bx + 16 * s, y, 5 * s, 0, Math.PI * 2);
    ctx.fill();
    ctx.font = `${r.own ? 700 : 400} ${13 * s}px ${FONT}`;
    ctx.fillStyle = r.dim ? "#6d7c96" : "#e8eef7";
    ctx.textAlign = "left";
    ctx.fillText(clip(ctx, r.name, bw - 24 * s - cells * col), bx + 28 * s, y);
    ctx.textAlign = "right";
    r.cells.forEach((text, c) => ctx.fillText(text, cellX(c), y));
  });

  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.font = `${13 * s}px ${FONT}`;
  const feedX = side ? bx + 4 * s : 14 * s;
  const feedY = side ? by + (rows.length + 1) * rh + 24 * s : 10 * s;
  feed.forEach((f, i) => {
    ctx.globalAlpha = Math.min(1, f.ttl);
    ctx.fillStyle = f.color || "#c9d6ea";
    ctx.fillText(clip(ctx, f.text, bw), feedX, feedY + i * 18 * s);
  });
  ctx.globalAlpha = 1;
}
