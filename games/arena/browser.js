// The Arena's browser module (docs/client.md, "Browser module"): how the arena is drawn,
// how keys, mouse and touch become its input `[mx, my, aim, buttons]`, and its movement
// rule for prediction. Bundled by static/build.mjs into static/build/games/arena.js; the
// shell calls the default export with its kit once the node's welcome names "arena".

export const Q = 10; // wire units per world unit
const FLAG_ALIVE = 1, FLAG_BOT = 2, FLAG_CONNECTED = 4;
const PICKUP_HEAL = 2;
const BUTTON_FIRE = 1;
const TELEPORT = 1000; // wire units (100 world units) in one patch: a respawn, not a slide

/** Movement rules of one arena, from `welcome.config`: an exact port of the engine's
 * `Arena._move` (games/arena/game.py; integer 1/10 units, the same truncation, world
 * bounds and wall push-out), so a replay from the server's position gives its answer. */
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

/** The predictor's step: `[x, y]` one tick on with input values `[mx, my, aim, buttons]`. */
export function makeStep(config) {
  const mover = new Mover(config);
  return (state, values) => mover.move(state[0], state[1], ...clampMove(values[0], values[1]));
}

/** A shot's position at (fractional) tick t: it flies from its launch, never updated. */
export function projectileAt(e, t) {
  const n = t - e.born;
  return { id: e.id, owner: e.owner, age: n, x: (e.x0 + e.vx * n) / Q, y: (e.y0 + e.vy * n) / Q,
    vx: e.vx, vy: e.vy };
}

export default function create(kit) {
  const { config, FONT, playerColor, drawMatchHud } = kit;
  const W = config.width, H = config.height;
  const feed = [];
  let floaters = [];
  const flashes = new Map(); // player id -> 1..0
  let damageFlash = 0;
  let ownAim = 0; // the aim last sent, for the own barrel when the pointer is away

  const layout = (w, h, dpr) => kit.fitWorld(w, h, W, H, dpr, { sidebar: 236 });

  /** The own player's drawn position (world units), or null. */
  const ownAt = (view) => (view.own ? { x: view.own.x / Q, y: view.own.y / Q } : null);

  function input(controls, view) {
    const [mx, my] = controls.move();
    const at = ownAt(view);
    if (view.pointer && at) ownAim = kit.aimOf(view.pointer.x - at.x, view.pointer.y - at.y);
    return [mx, my, ownAim, controls.firing() ? BUTTON_FIRE : 0];
  }

  function event(ev, view) {
    const ents = view.entities;
    const d = ev.data;
    const name = (id) => { const e = ents.get(id); return e && e.type === "player" ? String(e.name) : `#${id}`; };
    const pos = (id) => { const e = ents.get(id); return e ? { x: e.x / Q, y: e.y / Q } : null; };
    if (ev.type === "hit") {
      flashes.set(d.player, 1);
      const p = pos(d.player);
      if (p) floaters.push({ text: `-${d.damage}`, x: p.x, y: p.y - 20, age: 0, color: "#ff8a80" });
      if (d.player === view.playerId) damageFlash = 1;
    } else if (ev.type === "kill") {
      const text = d.killer === d.player || !ents.has(d.killer)
        ? `${name(d.player)} was eliminated` : `${name(d.killer)} ✦ ${name(d.player)}`;
      const mine = d.killer === view.playerId || d.player === view.playerId;
      feed.push({ text, ttl: 5, color: mine ? "#ffd54f" : "#c9d6ea" });
    } else if (ev.type === "pickup") {
      const p = pos(d.player);
      const heal = d.sort === PICKUP_HEAL;
      if (p) floaters.push({ text: heal ? "+hp" : "+1", x: p.x, y: p.y - 20, age: 0, color: heal ? "#66bb6a" : "#ffd54f" });
    } else if (ev.type === "joined") {
      feed.push({ text: `${d.name} joined`, ttl: 4 });
    } else if (ev.type === "left") {
      feed.push({ text: `${name(d.player)} left`, ttl: 4 });
    }
  }

  function draw(ctx, view) {
    const { w, h, dpr, dt } = view;
    const tr = view.layout;
    const { scale, ox, oy } = tr;
    // effects age
    damageFlash = Math.max(0, damageFlash - dt * 2);
    for (const [id, f] of flashes) {
      if (f - dt * 4 <= 0) flashes.delete(id); else flashes.set(id, f - dt * 4);
    }
    floaters = floaters.filter((f) => (f.age += dt) < 1);
    const shown = feed.filter((f) => (f.ttl -= dt) > 0).slice(-6);
    feed.length = 0;
    feed.push(...shown);

    const players = [], pickups = [], shots = [];
    for (const e of view.entities.values()) {
      if (e.type === "player") players.push(e);
      else if (e.type === "pickup") pickups.push(e);
      else if (e.type === "projectile") shots.push(projectileAt(e, view.tick));
    }
    for (const e of view.gone) { // shots removed in the newer patch finish their flight
      if (e.type === "projectile") shots.push(projectileAt(e, view.tick));
    }
    players.sort((a, b) => (a.own ? 1 : 0) - (b.own ? 1 : 0)); // own on top

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    kit.background(ctx, w, h);

    // arena floor, grid, border
    ctx.setTransform(scale, 0, 0, scale, ox, oy);
    ctx.fillStyle = "#141d33";
    ctx.fillRect(0, 0, W, H);
    ctx.strokeStyle = "rgba(120,150,200,0.07)";
    ctx.lineWidth = 1 / scale;
    ctx.beginPath();
    for (let x = 100; x < W; x += 100) { ctx.moveTo(x, 0); ctx.lineTo(x, H); }
    for (let y = 100; y < H; y += 100) { ctx.moveTo(0, y); ctx.lineTo(W, y); }
    ctx.stroke();
    ctx.strokeStyle = "#3a4f7a";
    ctx.lineWidth = 4;
    ctx.strokeRect(-2, -2, W + 4, H + 4);

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
    for (const e of pickups) {
      const p = { x: e.x / Q, y: e.y / Q };
      const heal = e.sort === PICKUP_HEAL;
      const pulse = 1 + 0.12 * Math.sin(view.time * 5 + e.id);
      ctx.fillStyle = heal ? "rgba(102,187,106,0.25)" : "rgba(255,213,79,0.25)";
      ctx.beginPath();
      ctx.arc(p.x, p.y, pr * 1.6 * pulse, 0, Math.PI * 2);
      ctx.fill();
      ctx.fillStyle = heal ? "#66bb6a" : "#ffd54f";
      if (heal) { // a cross for heal
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
    for (const s of shots) {
      if (s.age < 0) continue; // not fired yet at the drawn tick
      const color = playerColor(s.owner);
      const tail = Math.min(s.age, 2.5);
      ctx.strokeStyle = color;
      ctx.globalAlpha = 0.45;
      ctx.lineWidth = rr * 1.4;
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(s.x, s.y);
      ctx.lineTo(s.x - (s.vx / Q) * tail, s.y - (s.vy / Q) * tail);
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
    for (const p of players) {
      const x = p.x / Q, y = p.y / Q;
      const color = playerColor(p.id);
      const alive = (p.flags & FLAG_ALIVE) !== 0;
      const connected = (p.flags & FLAG_CONNECTED) !== 0;
      if (!alive) {
        ctx.globalAlpha = 0.25;
        ctx.strokeStyle = color;
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.arc(x, y, R, 0, Math.PI * 2);
        ctx.stroke();
        ctx.globalAlpha = 1;
        continue;
      }
      let aim = p.aim;
      if (p.own && view.pointer) aim = kit.aimOf(view.pointer.x - x, view.pointer.y - y);
      const a = aim / 1000;
      const flash = flashes.get(p.id) || 0;
      // aim barrel
      ctx.strokeStyle = color;
      ctx.lineWidth = 6;
      ctx.lineCap = "round";
      ctx.beginPath();
      ctx.moveTo(x + Math.cos(a) * R * 0.5, y + Math.sin(a) * R * 0.5);
      ctx.lineTo(x + Math.cos(a) * R * 1.55, y + Math.sin(a) * R * 1.55);
      ctx.stroke();
      // body
      ctx.globalAlpha = connected ? 1 : 0.45;
      ctx.fillStyle = flash > 0 ? "#ffffff" : color;
      ctx.beginPath();
      ctx.arc(x, y, R, 0, Math.PI * 2);
      ctx.fill();
      ctx.lineWidth = p.own ? 3 : 2;
      ctx.strokeStyle = p.own ? "#ffffff" : "rgba(0,0,0,0.5)";
      ctx.stroke();
      ctx.globalAlpha = 1;
      if (flash > 0) { // hit ring
        ctx.strokeStyle = `rgba(255,80,80,${flash})`;
        ctx.lineWidth = 3;
        ctx.beginPath();
        ctx.arc(x, y, R + 6 + (1 - flash) * 10, 0, Math.PI * 2);
        ctx.stroke();
      }
      // health bar and name
      const bw = Math.max(R * 2.4, 34 * px), bh = Math.max(4, 4 * px);
      const frac = Math.max(0, Math.min(1, p.hp / (config.max_hp || 100)));
      ctx.fillStyle = "rgba(0,0,0,0.6)";
      ctx.fillRect(x - bw / 2, y - R - 6 - bh, bw, bh);
      ctx.fillStyle = frac > 0.5 ? "#66bb6a" : (frac > 0.25 ? "#ffca28" : "#ef5350");
      ctx.fillRect(x - bw / 2, y - R - 6 - bh, bw * frac, bh);
      ctx.fillStyle = p.own ? "#ffffff" : "#c9d6ea";
      ctx.font = `${p.own ? 600 : 400} ${12 * px}px ${FONT}`;
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(String(p.name) + (connected ? "" : " (away)"), x, y - R - 8 - bh - 3 * px);
    }

    // floating texts (damage, pickups)
    ctx.textAlign = "center";
    ctx.textBaseline = "middle";
    for (const f of floaters) {
      ctx.globalAlpha = Math.max(0, 1 - f.age);
      ctx.fillStyle = f.color;
      ctx.font = `700 ${14 * px}px ${FONT}`;
      ctx.fillText(f.text, f.x, f.y - f.age * 30);
    }
    ctx.globalAlpha = 1;

    // aim cursor
    if (view.pointer && view.phase === "playing") {
      const c = view.pointer;
      ctx.strokeStyle = "rgba(255,255,255,0.7)";
      ctx.lineWidth = 1.5;
      ctx.beginPath();
      ctx.arc(c.x, c.y, 8, 0, Math.PI * 2);
      ctx.moveTo(c.x - 12, c.y);
      ctx.lineTo(c.x + 12, c.y);
      ctx.moveTo(c.x, c.y - 12);
      ctx.lineTo(c.x, c.y + 12);
      ctx.stroke();
    }

    // screen-space HUD
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    if (damageFlash > 0) {
      const g = ctx.createRadialGradient(w / 2, h / 2, Math.min(w, h) * 0.3, w / 2, h / 2, Math.max(w, h) * 0.7);
      g.addColorStop(0, "rgba(255,0,0,0)");
      g.addColorStop(1, `rgba(255,40,40,${0.45 * damageFlash})`);
      ctx.fillStyle = g;
      ctx.fillRect(0, 0, w, h);
    }
    drawHud(ctx, view, tr, players);
  }

  function drawHud(ctx, view, { dpr, side, ox, scale }, players) {
    const rows = players.map((p) => ({
      id: p.id, name: String(p.name), score: p.score, kills: p.kills, deaths: p.deaths, own: !!p.own,
      bot: (p.flags & FLAG_BOT) !== 0, connected: (p.flags & FLAG_CONNECTED) !== 0,
    })).sort((a, b) => b.score - a.score || b.kills - a.kills || a.id - b.id);
    drawMatchHud(ctx, {
      s: dpr, w: view.w, cx: side ? ox + (W * scale) / 2 : view.w / 2, side,
      seconds: view.seconds,
      subtitle: `${config.mode || "arena"} · first to ${config.score_limit}`,
      header: ["PLAYER", "K/D", "PTS"],
      rows: rows.map((r) => ({
        name: r.name + (r.bot ? " [bot]" : ""), own: r.own, color: playerColor(r.id),
        dim: !r.connected, cells: [`${r.kills}/${r.deaths}`, String(r.score)],
      })),
      feed,
    });
  }

  return {
    unit: Q,
    cursor: "none", // the module draws its own crosshair
    layout,
    draw,
    input,
    event,
    // fire held: the input goes out at the shell's input rate, so the weapon keeps firing
    hold: (values) => (values[3] & BUTTON_FIRE) !== 0,
    active: (own) => (own.flags & FLAG_ALIVE) !== 0, // the dead neither act nor are predicted
    banner: (view) => (view.own && !(view.own.flags & FLAG_ALIVE) ? "Eliminated — respawning…" : ""),
    lerp: { aim: kit.lerpAim },
    teleport: (o, e, kind) => kind.name === "player"
      && Math.abs(e[kind.index.x] - o[kind.index.x]) + Math.abs(e[kind.index.y] - o[kind.index.y]) > TELEPORT,
    predict: { fields: ["x", "y"], step: makeStep(config), snap: 600 },
  };
}

