// Canvas drawing: the arena, its players, shots and pickups, and the HUD. Pure drawing
// from a `view` object built by game.js; no state of its own beyond the canvas.

const PALETTE = ["#4fc3f7", "#ff8a65", "#aed581", "#f06292", "#ffd54f", "#9575cd", "#4db6ac",
  "#e57373", "#81c784", "#64b5f6", "#ffb74d", "#ba68c8", "#a1887f", "#90a4ae", "#dce775", "#4dd0e1"];

export function playerColor(id) {
  return PALETTE[(id - 1) % PALETTE.length];
}

const FONT = "system-ui, -apple-system, Segoe UI, Roboto, sans-serif";

/** Resize the canvas backing store to its css size times the device pixel ratio. */
export function pixelRatio() {
  return Math.min(window.devicePixelRatio || 1, 2);
}

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

/** World-to-canvas transform that fits the whole arena with a margin for the HUD. */
export function worldTransform(w, h, worldW, worldH, dpr) {
  const margin = 16 * dpr, top = 48 * dpr;
  // a wide screen keeps a sidebar for the scoreboard and feed; a narrow one overlays them
  const side = w / dpr >= 1000 ? 236 * dpr : 0;
  const scale = Math.min((w - side - 2 * margin) / worldW, (h - top - margin) / worldH);
  const ox = margin + (w - side - 2 * margin - worldW * scale) / 2;
  const oy = top + (h - top - margin - worldH * scale) / 2;
  return { scale, ox, oy, dpr, side };
}

/** Draws a message screen (queue, connecting, errors) when there is no arena yet. */
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

function background(ctx, w, h) {
  const g = ctx.createLinearGradient(0, 0, 0, h);
  g.addColorStop(0, "#0b1020");
  g.addColorStop(1, "#111a2e");
  ctx.fillStyle = g;
  ctx.fillRect(0, 0, w, h);
}

/** The whole game frame. */
export function drawGame(ctx, w, h, view) {
  const { config } = view;
  const tr = worldTransform(w, h, config.width, config.height, view.dpr);
  const { scale, ox, oy, dpr } = tr;
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  background(ctx, w, h);

  // arena floor, grid, border
  ctx.setTransform(scale, 0, 0, scale, ox, oy);
  ctx.fillStyle = "#141d33";
  ctx.fillRect(0, 0, config.width, config.height);
  ctx.strokeStyle = "rgba(120,150,200,0.07)";
  ctx.lineWidth = 1 / scale;
  ctx.beginPath();
  for (let x = 100; x < config.width; x += 100) { ctx.moveTo(x, 0); ctx.lineTo(x, config.height); }
  for (let y = 100; y < config.height; y += 100) { ctx.moveTo(0, y); ctx.lineTo(config.width, y); }
  ctx.stroke();
  ctx.strokeStyle = "#3a4f7a";
  ctx.lineWidth = 4;
  ctx.strokeRect(-2, -2, config.width + 4, config.height + 4);

  // walls
  for (const [x, y, ww, hh] of config.walls || []) {
    ctx.fillStyle = "#2b3a5c";
    ctx.fillRect(x, y, ww, hh);
    ctx.fillStyle = "#3d5283";
    ctx.fillRect(x, y, ww, Math.min(6, hh));
    ctx.strokeStyle = "#4a6299";
    ctx.lineWidth = 2;
    ctx.strokeRect(x + 1, y + 1, ww - 2, hh - 2);
  }

  // pickups, pulsing
  const pr = config.pickup_radius || 14;
  for (const p of view.pickups) {
    const pulse = 1 + 0.12 * Math.sin(view.time * 5 + p.id);
    ctx.fillStyle = p.sort === 2 ? "rgba(102,187,106,0.25)" : "rgba(255,213,79,0.25)";
    ctx.beginPath();
    ctx.arc(p.x, p.y, pr * 1.6 * pulse, 0, Math.PI * 2);
    ctx.fill();
    ctx.fillStyle = p.sort === 2 ? "#66bb6a" : "#ffd54f";
    if (p.sort === 2) { // a cross for heal
      const a = pr * 0.9, b = pr * 0.35;
      ctx.fillRect(p.x - a, p.y - b, 2 * a, 2 * b);
      ctx.fillRect(p.x - b, p.y - a, 2 * b, 2 * a);
    } else { // a diamond for score
      ctx.beginPath();
      ctx.moveTo(p.x, p.y - pr);
      ctx.lineTo(p.x + pr * 0.8, p.y);
      ctx.lineTo(p.x, p.y + pr);
      ctx.lineTo(p.x - pr * 0.8, p.y);
      ctx.closePath();
      ctx.fill();
    }
  }

  // projectiles with a short trail
  const rr = Math.max(3, config.projectile_radius || 4);
  for (const s of view.projectiles) {
    const color = playerColor(s.owner);
    const tail = Math.min(s.age, 2.5);
    ctx.strokeStyle = color;
    ctx.globalAlpha = 0.45;
    ctx.lineWidth = rr * 1.4;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(s.x, s.y);
    ctx.lineTo(s.x - (s.vx / 10) * tail, s.y - (s.vy / 10) * tail);
    ctx.stroke();
    ctx.globalAlpha = 1;
    ctx.fillStyle = "#fff";
    ctx.beginPath();
    ctx.arc(s.x, s.y, rr, 0, Math.PI * 2);
    ctx.fill();
  }

  // players
  const R = config.player_radius || 16;
  const px = dpr / scale; // world units per css pixel: labels keep their size on screen
  for (const p of view.players) {
    if (!p.alive) {
      ctx.globalAlpha = 0.25;
      ctx.strokeStyle = p.color;
      ctx.lineWidth = 2;
      ctx.beginPath();
      ctx.arc(p.x, p.y, R, 0, Math.PI * 2);
      ctx.stroke();
      ctx.globalAlpha = 1;
      continue;
    }
    const a = p.aim / 1000;
    // aim barrel
    ctx.strokeStyle = p.color;
    ctx.lineWidth = 6;
    ctx.lineCap = "round";
    ctx.beginPath();
    ctx.moveTo(p.x + Math.cos(a) * R * 0.5, p.y + Math.sin(a) * R * 0.5);
    ctx.lineTo(p.x + Math.cos(a) * R * 1.55, p.y + Math.sin(a) * R * 1.55);
    ctx.stroke();
    // body
    ctx.globalAlpha = p.connected ? 1 : 0.45;
    ctx.fillStyle = p.flash > 0 ? "#ffffff" : p.color;
    ctx.beginPath();
    ctx.arc(p.x, p.y, R, 0, Math.PI * 2);
    ctx.fill();
    ctx.lineWidth = p.own ? 3 : 2;
    ctx.strokeStyle = p.own ? "#ffffff" : "rgba(0,0,0,0.5)";
    ctx.stroke();
    ctx.globalAlpha = 1;
    if (p.flash > 0) { // hit ring
      ctx.strokeStyle = `rgba(255,80,80,${p.flash})`;
      ctx.lineWidth = 3;
      ctx.beginPath();
      ctx.arc(p.x, p.y, R + 6 + (1 - p.flash) * 10, 0, Math.PI * 2);
      ctx.stroke();
    }
    // health bar and name
    const bw = Math.max(R * 2.4, 34 * px), bh = Math.max(4, 4 * px);
    const frac = Math.max(0, Math.min(1, p.hp / (config.max_hp || 100)));
    ctx.fillStyle = "rgba(0,0,0,0.6)";
    ctx.fillRect(p.x - bw / 2, p.y - R - 6 - bh, bw, bh);
    ctx.fillStyle = frac > 0.5 ? "#66bb6a" : (frac > 0.25 ? "#ffca28" : "#ef5350");
    ctx.fillRect(p.x - bw / 2, p.y - R - 6 - bh, bw * frac, bh);
    ctx.fillStyle = p.own ? "#ffffff" : "#c9d6ea";
    ctx.font = `${p.own ? 600 : 400} ${12 * px}px ${FONT}`;
    ctx.textAlign = "center";
    ctx.textBaseline = "bottom";
    ctx.fillText(p.name + (p.connected ? "" : " (away)"), p.x, p.y - R - 8 - bh - 3 * px);
  }

  // floating texts (damage, pickups)
  ctx.textAlign = "center";
  ctx.textBaseline = "middle";
  for (const f of view.floaters) {
    ctx.globalAlpha = Math.max(0, 1 - f.age);
    ctx.fillStyle = f.color;
    ctx.font = `700 ${14 * px}px ${FONT}`;
    ctx.fillText(f.text, f.x, f.y - f.age * 30);
  }
  ctx.globalAlpha = 1;

  // aim cursor
  if (view.cursor) {
    ctx.strokeStyle = "rgba(255,255,255,0.7)";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    ctx.arc(view.cursor.x, view.cursor.y, 8, 0, Math.PI * 2);
    ctx.moveTo(view.cursor.x - 12, view.cursor.y);
    ctx.lineTo(view.cursor.x + 12, view.cursor.y);
    ctx.moveTo(view.cursor.x, view.cursor.y - 12);
    ctx.lineTo(view.cursor.x, view.cursor.y + 12);
    ctx.stroke();
  }

  // screen-space HUD
  ctx.setTransform(1, 0, 0, 1, 0, 0);
  if (view.damageFlash > 0) {
    const g = ctx.createRadialGradient(w / 2, h / 2, Math.min(w, h) * 0.3, w / 2, h / 2, Math.max(w, h) * 0.7);
    g.addColorStop(0, "rgba(255,0,0,0)");
    g.addColorStop(1, `rgba(255,40,40,${0.45 * view.damageFlash})`);
    ctx.fillStyle = g;
    ctx.fillRect(0, 0, w, h);
  }
  drawHud(ctx, w, h, view, tr);
  if (view.touch) drawTouch(ctx, view.touch, dpr);
}

function drawHud(ctx, w, h, view, { dpr, side, ox, scale }) {
  const s = dpr;
  const cx = side ? ox + (view.config.width * scale) / 2 : w / 2;
  // clock, top centre
  const secs = Math.max(0, Math.ceil(view.clockSeconds));
  const clock = `${Math.floor(secs / 60)}:${String(secs % 60).padStart(2, "0")}`;
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  ctx.font = `700 ${24 * s}px ${FONT}`;
  ctx.fillStyle = secs <= 10 ? "#ff8a80" : "#e8eef7";
  ctx.fillText(clock, cx, 8 * s);
  ctx.font = `${12 * s}px ${FONT}`;
  ctx.fillStyle = "#8ea2c4";
  ctx.fillText(`${view.mode} · first to ${view.scoreLimit}`, cx, 34 * s);

  // scoreboard, top right
  const rows = view.scoreboard;
  const bw = 220 * s, rh = 20 * s;
  const bx = w - bw - 12 * s, by = side ? 48 * s : 10 * s;
  ctx.fillStyle = "rgba(8,12,24,0.72)";
  roundRect(ctx, bx, by, bw, (rows.length + 1) * rh + 10 * s, 8 * s);
  ctx.fill();
  ctx.font = `600 ${12 * s}px ${FONT}`;
  ctx.textBaseline = "middle";
  ctx.fillStyle = "#8ea2c4";
  ctx.textAlign = "left";
  ctx.fillText("PLAYER", bx + 12 * s, by + rh / 2 + 5 * s);
  ctx.textAlign = "right";
  ctx.fillText("K/D", bx + bw - 62 * s, by + rh / 2 + 5 * s);
  ctx.fillText("PTS", bx + bw - 12 * s, by + rh / 2 + 5 * s);
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
    ctx.fillStyle = r.connected ? "#e8eef7" : "#6d7c96";
    ctx.textAlign = "left";
    ctx.fillText(clip(ctx, r.name + (r.bot ? " [bot]" : ""), bw - 28 * s - 96 * s), bx + 28 * s, y);
    ctx.textAlign = "right";
    ctx.fillText(`${r.kills}/${r.deaths}`, bx + bw - 62 * s, y);
    ctx.fillText(String(r.score), bx + bw - 12 * s, y);
  });

  // kill feed, top left
  ctx.textAlign = "left";
  ctx.textBaseline = "top";
  ctx.font = `${13 * s}px ${FONT}`;
  const feedX = side ? bx + 4 * s : 14 * s;
  const feedY = side ? by + (rows.length + 1) * rh + 24 * s : 10 * s;
  view.feed.forEach((f, i) => {
    ctx.globalAlpha = Math.min(1, f.ttl);
    ctx.fillStyle = f.color || "#c9d6ea";
    ctx.fillText(clip(ctx, f.text, bw), feedX, feedY + i * 18 * s);
  });
  ctx.globalAlpha = 1;

  // connection, bottom left
  const ping = view.rtt === null ? "–" : `${view.rtt} ms`;
  const dot = view.linkState === "open" ? "#66bb6a" : (view.linkState === "reconnecting" ? "#ffca28" : "#ef5350");
  ctx.textBaseline = "bottom";
  ctx.font = `${12 * s}px ${FONT}`;
  ctx.fillStyle = dot;
  ctx.beginPath();
  ctx.arc(16 * s, h - 14 * s, 4 * s, 0, Math.PI * 2);
  ctx.fill();
  ctx.fillStyle = "#8ea2c4";
  ctx.fillText(`ping ${ping} · ${view.transport || "connecting"}`, 26 * s, h - 7 * s);

  // centre banner: respawn countdown, reconnecting, ...
  if (view.banner) {
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    ctx.font = `700 ${22 * s}px ${FONT}`;
    ctx.fillStyle = "rgba(8,12,24,0.6)";
    const tw = ctx.measureText(view.banner).width + 40 * s;
    roundRect(ctx, w / 2 - tw / 2, h / 2 - 24 * s, tw, 48 * s, 10 * s);
    ctx.fill();
    ctx.fillStyle = "#ffffff";
    ctx.fillText(view.banner, w / 2, h / 2);
  }
}

function drawTouch(ctx, touch, dpr) {
  if (!touch.stick) return;
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

function roundRect(ctx, x, y, w, h, r) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}

function clip(ctx, text, width) {
  if (ctx.measureText(text).width <= width) return text;
  while (text.length > 1 && ctx.measureText(text + "…").width > width) text = text.slice(0, -1);
  return text + "…";
}
