// Tag's browser module (docs/client.md, "Browser module"): runners on a field, "it" in red;
// keys or the touch stick give the input `[mx, my]`; the own runner is predicted with an
// exact port of `Tag.step`'s movement (games/tag/game.py). Bundled by static/build.mjs
// into static/build/games/tag.js and loaded by the shell when the welcome names "tag".

const FLAG_BOT = 1, FLAG_AWAY = 2;

/** Python's round(): halves go to the even neighbour (Math.round sends them up). */
export function pyRound(v) {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** One tick of a runner's movement from (x, y) with input (mx, my), as Tag.step does it:
 * full speed at a vector length of 100 or more, "it" `it_boost` percent faster, held
 * inside the field. */
export function makeMove(config, simHz) {
  const { width, height, radius, speed, it_boost: boost } = config;
  return (x, y, mx, my, isIt) => {
    const step = (speed * (isIt ? boost : 100)) / (100 * simHz);
    const n = Math.hypot(mx, my);
    if (!n) return [x, y];
    const k = step / Math.max(n, 100);
    return [Math.min(Math.max(x + pyRound(mx * k), radius), width - radius),
      Math.min(Math.max(y + pyRound(my * k), radius), height - radius)];
  };
}

export default function create(kit) {
  const { config, FONT, playerColor, drawMatchHud } = kit;
  const W = config.width, H = config.height, R = config.radius;
  const noTagBack = (config.no_tag_back || 0) * config.sim_hz; // ticks
  const move = makeMove(config, config.sim_hz);
  let lastTag = null; // {tagger, tagged, tick}: the tagger cannot be tagged straight back
  let flash = 0; // 1..0 after a tag, for the flash on the field
  let bannerUntil = 0; // the own runner became "it": say so for a moment
  const feed = [];

  const layout = (w, h, dpr) => kit.fitWorld(w, h, W, H, dpr, { sidebar: 236 });

  function event(ev, view) {
    const d = ev.data;
    const name = (id) => { const e = view.entities.get(id); return e ? String(e.name) : `#${id}`; };
    if (ev.type === "tag") {
      lastTag = { tagger: d.tagger, tagged: d.tagged, tick: view.tick };
      flash = 1;
      if (d.tagged === view.playerId) bannerUntil = view.time + 2;
      const text = d.tagger ? `${name(d.tagger)} tagged ${name(d.tagged)}` : `${name(d.tagged)} is it`;
      const mine = d.tagger === view.playerId || d.tagged === view.playerId;
      feed.push({ text, ttl: 5, color: mine ? "#ff8a80" : "#c9d6ea" });
    } else if (ev.type === "joined") {
      feed.push({ text: `${d.name} joined`, ttl: 4 });
    } else if (ev.type === "left") {
      feed.push({ text: `${name(d.player)} left`, ttl: 4 });
    }
  }

  function draw(ctx, view) {
    const { w, h, dpr, dt } = view;
    const { scale, ox, oy } = view.layout;
    flash = Math.max(0, flash - dt * 2);
    const shown = feed.filter((f) => (f.ttl -= dt) > 0).slice(-6);
    feed.length = 0;
    feed.push(...shown);
    const runners = [...view.entities.values()].filter((e) => e.type === "runner");
    runners.sort((a, b) => (a.own ? 1 : 0) - (b.own ? 1 : 0) || a.it - b.it); // own, then "it", on top
    const it = runners.find((r) => r.it);
    const immune = lastTag && lastTag.tagger && view.tick < lastTag.tick + noTagBack ? lastTag.tagger : 0;

    ctx.setTransform(1, 0, 0, 1, 0, 0);
    kit.background(ctx, w, h);
    ctx.setTransform(scale, 0, 0, scale, ox, oy);
    // the field: grass stripes, a border
    ctx.fillStyle = "#15301f";
    ctx.fillRect(0, 0, W, H);
    ctx.fillStyle = "rgba(255,255,255,0.03)";
    for (let x = 0; x < W; x += 500) if ((x / 500) % 2 === 0) ctx.fillRect(x, 0, 250, H);
    ctx.strokeStyle = "rgba(255,255,255,0.5)";
    ctx.lineWidth = 8;
    ctx.strokeRect(-4, -4, W + 8, H + 8);
    if (flash > 0) {
      ctx.fillStyle = `rgba(255,80,80,${0.12 * flash})`;
      ctx.fillRect(0, 0, W, H);
    }

    const px = dpr / scale; // world units per css pixel
    for (const r of runners) {
      const color = playerColor(r.id);
      const away = (r.flags & FLAG_AWAY) !== 0;
      if (r.it) { // "it": a red halo that pulses
        const pulse = 1 + 0.15 * Math.sin(view.time * 8);
        ctx.fillStyle = "rgba(255,60,60,0.25)";
        ctx.beginPath();
        ctx.arc(r.x, r.y, R * 1.8 * pulse, 0, Math.PI * 2);
        ctx.fill();
      }
      ctx.globalAlpha = away ? 0.4 : 1;
      ctx.fillStyle = r.it ? "#ef5350" : color;
      ctx.beginPath();
      ctx.arc(r.x, r.y, R, 0, Math.PI * 2);
      ctx.fill();
      ctx.lineWidth = (r.own ? 4 : 2) * px;
      ctx.strokeStyle = r.own ? "#ffffff" : "rgba(0,0,0,0.5)";
      ctx.stroke();
      if (r.id === immune) { // just tagged "it" on: cannot be tagged back yet
        ctx.setLineDash([12 * px, 8 * px]);
        ctx.strokeStyle = "#80deea";
        ctx.lineWidth = 3 * px;
        ctx.beginPath();
        ctx.arc(r.x, r.y, R + 10 * px, 0, Math.PI * 2);
        ctx.stroke();
        ctx.setLineDash([]);
      }
      ctx.globalAlpha = 1;
      ctx.fillStyle = r.own ? "#ffffff" : "#e0e8f0";
      ctx.font = `${r.own ? 700 : 400} ${13 * px}px ${FONT}`;
      ctx.textAlign = "center";
      ctx.textBaseline = "bottom";
      ctx.fillText(String(r.name) + (r.it ? " — IT" : "") + (away ? " (away)" : ""), r.x, r.y - R - 6 * px);
    }
    // an arrow from the own runner: to "it" when running, to the nearest runner when "it"
    const own = view.own;
    if (own && it && view.phase === "playing") {
      const others = runners.filter((r) => r !== own && !(r.flags & FLAG_AWAY));
      const goal = own.it
        ? others.reduce((a, b) => (!a || (b.x - own.x) ** 2 + (b.y - own.y) ** 2 < (a.x - own.x) ** 2 + (a.y - own.y) ** 2 ? b : a), null)
        : it;
      if (goal && goal !== own) {
        const a = Math.atan2(goal.y - own.y, goal.x - own.x);
        const d = R + 22 * px;
        ctx.fillStyle = own.it ? "#ffd54f" : "#ef5350";
        ctx.beginPath();
        ctx.moveTo(own.x + Math.cos(a) * (d + 14 * px), own.y + Math.sin(a) * (d + 14 * px));
        ctx.lineTo(own.x + Math.cos(a + 0.35) * d, own.y + Math.sin(a + 0.35) * d);
        ctx.lineTo(own.x + Math.cos(a - 0.35) * d, own.y + Math.sin(a - 0.35) * d);
        ctx.closePath();
        ctx.fill();
      }
    }
    drawHud(ctx, view, runners);
  }

  function drawHud(ctx, view, runners) {
    const { side, ox, scale } = view.layout;
    ctx.setTransform(1, 0, 0, 1, 0, 0);
    const rows = runners.map((r) => ({ id: r.id, name: String(r.name), score: r.score, it: !!r.it,
      own: !!r.own, bot: (r.flags & FLAG_BOT) !== 0 }))
      .sort((a, b) => b.score - a.score || a.id - b.id);
    drawMatchHud(ctx, {
      s: view.dpr, w: view.w, cx: side ? ox + (W * scale) / 2 : view.w / 2, side,
      seconds: view.seconds,
      subtitle: `${config.mode || "tag"} · a point a second while you are not it`,
      header: ["RUNNER", "PTS"],
      rows: rows.map((r) => ({
        name: r.name + (r.bot ? " [bot]" : "") + (r.it ? " · it" : ""), own: r.own,
        color: r.it ? "#ef5350" : playerColor(r.id), dim: false, cells: [String(r.score)],
      })),
      feed,
    });
  }

  return {
    layout,
    draw,
    event,
    input: (controls) => controls.move(),
    active: (own) => !(own.flags & FLAG_AWAY),
    banner: (view) => (view.own && view.own.it && view.time < bannerUntil ? "You are it — tag someone!" : ""),
    // own: the own runner's fields in the latest patch ("it" runs faster)
    predict: { fields: ["x", "y"], snap: 4 * R,
      step: (s, values, own) => move(s[0], s[1], values[0], values[1], Boolean(own && own.it)) },
  };
}
