// One match on one canvas: the link to the node, the state, prediction, input, drawing.
import {
  DELTA, ERROR, EVENT, KEYFRAME, PLAYER, PROJECTILE, PR_BORN, PR_OWNER, WELCOME, P_ACK,
  P_AIM, P_DEATHS, P_FLAGS, P_HP, P_KILLS, P_NAME, P_SCORE, P_X, P_Y, FLAG_ALIVE, FLAG_BOT, FLAG_CONNECTED, BUTTON_FIRE,
  EV_HIT, EV_KILL, EV_PICKUP, EV_RESPAWN, EV_JOINED, EV_LEFT, EV_MATCH_END,
  encodeInput, readEvent,
} from "./codec.js";
import { NodeLink } from "./net.js";
import { Controls, aimOf } from "./input.js";
import { Mover, Prediction } from "./predict.js";
import { Snapshots, interpolate } from "./snapshots.js";
import {
  drawGame, drawMessage, fitCanvas, pixelRatio, playerColor, worldTransform,
} from "./render.js";

const MAX_INPUT_RATE = 20; // inputs per second at most (the node allows 60)
const KEEPALIVE_MOVING_MS = 250; // resend the controls this often while moving
const KEEPALIVE_IDLE_MS = 1000;
const MAX_CATCH_UP_TICKS = 5; // local ticks run in one go after a stall; beyond, skipped

const CLOSE_TEXT = {
  4010: "The seat token was refused", 4011: "The seat token expired",
  4012: "The seat token was already used", 4013: "The seat is on another node",
  4014: "The game node is full", 4015: "The seat could not be resumed",
  4016: "This seat was opened in another tab", 4030: "The game node is shutting down",
  4040: "This match is already over", 4004: "Too many inputs", 4005: "Join timed out",
};

export class Game {
  /**
   * @param canvas the <canvas> to draw on
   * @param opts {matchUrl, playUrl}: matchUrl + match_id + "/" is the lobby's match page,
   *   playUrl (optional) the page that queues for another match
   */
  constructor(canvas, { matchUrl = "/matches/", playUrl = null } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.matchUrl = matchUrl;
    this.playUrl = playUrl;
    this.controls = new Controls(canvas);
    this.link = null;
    this.config = null;
    this.playerId = 0;
    this.matchId = "";
    this.snapshots = null;
    this.prediction = null;
    this.phase = "idle"; // idle | queue | connecting | playing | ended | error
    this.message = { title: "Arena", lines: [] };
    this.results = null;
    this.endReason = "";
    this.error = null;
    this.pendingEvents = []; // {tick, event}, played when the render tick reaches them
    this.feed = [];
    this.floaters = [];
    this.flashes = new Map(); // player id -> 1..0
    this.damageFlash = 0;
    this.smooth = { x: 0, y: 0 }; // visual offset that hides prediction corrections
    this.seq = 0;
    this.sentControls = { mx: 0, my: 0, aim: 0, buttons: 0 };
    this.current = { mx: 0, my: 0 }; // the move of the last input the node got from us
    this.lastSendAt = 0;
    this.forceSend = false;
    this.localTick = 0;
    this.tickStart = 0;
    this.ownAlive = false;
    this.lastFrame = performance.now();
    this.stats = { inputsSent: 0, patches: 0, deltasSkipped: 0, corrections: 0, fps: 0,
      frameMs: 0 };
    this.frames = { n: 0, since: performance.now(), busy: 0 };
    this.overlay = null;
    this.running = true;
    this.frame = this.frame.bind(this);
    requestAnimationFrame(this.frame);
    // the simulation clock must run even where animation frames are throttled
    this.interval = setInterval(() => this.update(performance.now()), 10);
    this.onResize = () => fitCanvas(this.canvas);
    window.addEventListener("resize", this.onResize);
  }

  setMessage(title, lines = []) {
    this.message = { title, lines };
  }

  /** Connect to a node with a seat token. */
  connect(nodeUrl, token, { rawWebSocket = true } = {}) {
    this.phase = "connecting";
    this.setMessage("Connecting…", [nodeUrl]);
    this.link = new NodeLink({
      nodeUrl, token, rawWebSocket,
      onMessage: (m) => this.onMessage(m),
      onStatus: (s) => this.onStatus(s),
    });
    this.link.start();
  }

  onStatus(s) {
    if (s.state === "reconnecting") {
      this.prediction && this.prediction.reset();
    } else if (s.state === "closed" && this.phase !== "ended") {
      if (this.results) this.end();
      else this.fail(CLOSE_TEXT[s.code] || `Disconnected (${s.code} ${s.reason || ""})`.trim());
    }
  }

  onMessage(msg) {
    const now = performance.now();
    switch (msg.type) {
      case WELCOME: return this.welcome(msg, now);
      case KEYFRAME:
        if (!this.snapshots) return;
        this.snapshots.keyframe(msg.tick, msg.clock, msg.entities, now);
        return this.patched(msg);
      case DELTA:
        if (!this.snapshots) return;
        if (!this.snapshots.delta(msg, now)) { this.stats.deltasSkipped++; return; }
        return this.patched(msg);
      case EVENT:
        return this.queueEvents(msg.tick, msg.events);
      case ERROR:
        this.error = { code: msg.code, reason: msg.reason };
        return undefined;
      default:
        return undefined;
    }
  }

  welcome(msg, now) {
    const first = !this.config;
    this.config = msg.config;
    this.playerId = msg.playerId;
    this.matchId = msg.matchId;
    if (first) {
      this.snapshots = new Snapshots(this.config.sim_hz, this.config.patch_hz);
      this.prediction = new Prediction(new Mover(this.config));
      this.tickStart = now;
      this.localTick = 0;
    } else {
      this.prediction.reset(); // a resume: the old picture stays until the keyframe
    }
    this.forceSend = true; // the node zeroed our controls while we were away
    this.phase = "playing";
  }

  patched(msg) {
    this.stats.patches++;
    this.queueEvents(msg.tick, msg.events);
    const own = this.playerId ? this.snapshots.latest.entities.get(this.playerId) : null;
    if (!own || own[0] !== PLAYER) return;
    const alive = (own[P_FLAGS] & FLAG_ALIVE) !== 0;
    if (alive && !this.ownAlive) this.forceSend = true; // respawned: the node reset our move
    this.ownAlive = alive;
    const [ex, ey] = this.prediction.reconcile(msg.tick, own[P_X], own[P_Y], own[P_ACK], alive);
    if (ex || ey) {
      this.stats.corrections++;
      if (Math.hypot(ex, ey) > 600) { this.smooth.x = 0; this.smooth.y = 0; } // a teleport
      else { this.smooth.x += ex / 10; this.smooth.y += ey / 10; }
    }
  }

  queueEvents(tick, events) {
    for (const e of events || []) {
      const ev = readEvent(e);
      if (ev.type === EV_MATCH_END) {
        this.results = ev.results;
        this.endReason = ev.reason;
        this.end();
      } else {
        this.pendingEvents.push({ tick, ev });
      }
    }
  }

  // --- the clock: local ticks, inputs ------------------------------------------------------

  update(now) {
    if (!this.running || !this.config || this.phase !== "playing") return;
    const hz = this.config.sim_hz;
    let target = Math.floor(((now - this.tickStart) * hz) / 1000);
    if (target - this.localTick > MAX_CATCH_UP_TICKS) {
      this.localTick = target - MAX_CATCH_UP_TICKS; // a long stall (hidden tab): skip ahead
    }
    while (this.localTick < target) {
      this.localTick++;
      this.localStep(now);
    }
  }

  localStep(now) {
    const link = this.link;
    const canPlay = this.playerId > 0 && link && link.welcomed && this.ownAlive;
    if (canPlay) {
      const [mx, my] = this.controls.move();
      const aim = this.aimNow();
      const fire = this.controls.firing();
      const s = this.sentControls;
      const changed = mx !== s.mx || my !== s.my || aim !== s.aim;
      const keepalive = now - this.lastSendAt >= ((mx || my) ? KEEPALIVE_MOVING_MS : KEEPALIVE_IDLE_MS);
      const allowed = now - this.lastSendAt >= 1000 / MAX_INPUT_RATE - 4;
      if (allowed && (changed || fire || keepalive || this.forceSend)) {
        const buttons = fire ? BUTTON_FIRE : 0;
        const seq = this.seq + 1;
        if (link.send(encodeInput(seq, mx, my, aim, buttons))) {
          this.seq = seq;
          this.stats.inputsSent++;
          this.sentControls = { mx, my, aim, buttons };
          this.current = { mx, my };
          this.lastSendAt = now;
          this.forceSend = false;
          this.controls.clicked = false;
          this.prediction.sentInput(seq, this.localTick);
        }
      }
    } else {
      this.current = { mx: 0, my: 0 };
      this.controls.clicked = false; // a click while dead or away does not fire later
    }
    this.prediction.tick(this.localTick, this.seq, this.current.mx, this.current.my,
      canPlay && link.status.state === "open");
  }

  /** Aim from the own player's drawn position towards the pointer, in milliradians. */
  aimNow() {
    const p = this.controls.pointer;
    if (!p || !this.prediction || !this.prediction.valid) return this.sentControls.aim;
    const dpr = pixelRatio();
    const tr = worldTransform(this.canvas.width, this.canvas.height, this.config.width,
      this.config.height, dpr);
    const wx = (p.x * dpr - tr.ox) / tr.scale, wy = (p.y * dpr - tr.oy) / tr.scale;
    const ox = this.prediction.x / 10 + this.smooth.x, oy = this.prediction.y / 10 + this.smooth.y;
    return aimOf(wx - ox, wy - oy);
  }

  // --- drawing -----------------------------------------------------------------------------

  frame(now) {
    if (!this.running) return;
    requestAnimationFrame(this.frame);
    this.update(now);
    const dt = Math.min(0.1, (now - this.lastFrame) / 1000);
    this.lastFrame = now;
    const { w, h, dpr } = fitCanvas(this.canvas);
    const cursor = this.phase === "playing" && !this.controls.usedTouch ? "none" : "default";
    if (this.canvas.style.cursor !== cursor) this.canvas.style.cursor = cursor; // we draw a crosshair
    if (!this.config || !this.snapshots || !this.snapshots.latest) {
      drawMessage(this.ctx, w, h, dpr, this.message.title, this.message.lines, now / 1000);
      return;
    }
    const view = this.view(now, dt, dpr);
    drawGame(this.ctx, w, h, view);
    this.countFrame(now);
  }

  /** Frames per second and the mean cost of building and drawing one, over 1 s windows. */
  countFrame(start) {
    const f = this.frames;
    const end = performance.now();
    f.n++;
    f.busy += end - start;
    if (end - f.since >= 1000) {
      this.stats.fps = Math.round((f.n * 1000) / (end - f.since));
      this.stats.frameMs = Math.round((f.busy / f.n) * 100) / 100;
      f.n = 0; f.busy = 0; f.since = end;
    }
  }

  view(now, dt, dpr) {
    const rt = this.phase === "ended"
      ? this.snapshots.latest.tick : this.snapshots.renderTick(now);
    this.playEvents(rt);
    const state = interpolate(this.snapshots, rt);
    const decay = Math.exp(-dt / 0.1);
    this.smooth.x *= decay;
    this.smooth.y *= decay;
    this.damageFlash = Math.max(0, this.damageFlash - dt * 2);
    for (const [id, f] of this.flashes) {
      if (f - dt * 4 <= 0) this.flashes.delete(id); else this.flashes.set(id, f - dt * 4);
    }
    this.floaters = this.floaters.filter((f) => (f.age += dt) < 1);
    this.feed = this.feed.filter((f) => (f.ttl -= dt) > 0).slice(-6);

    const players = state.players.map((p) => {
      const e = p.fields;
      const own = p.id === this.playerId;
      const alive = (e[P_FLAGS] & FLAG_ALIVE) !== 0;
      let { x, y, aim } = p;
      if (own && alive && this.prediction.valid) {
        x = this.prediction.x / 10 + this.smooth.x;
        y = this.prediction.y / 10 + this.smooth.y;
        aim = this.controls.pointer ? this.aimNow() : aim;
      }
      return {
        id: p.id, x, y, aim, own, alive, name: String(e[P_NAME]), hp: e[P_HP],
        connected: (e[P_FLAGS] & FLAG_CONNECTED) !== 0, bot: (e[P_FLAGS] & FLAG_BOT) !== 0,
        color: playerColor(p.id), flash: this.flashes.get(p.id) || 0,
      };
    });
    players.sort((a, b) => (a.own ? 1 : 0) - (b.own ? 1 : 0)); // own on top
    const latest = this.snapshots.latest.entities;
    const scoreboard = [];
    for (const [id, e] of latest) {
      if (e[0] !== PLAYER) continue;
      scoreboard.push({
        id, name: String(e[P_NAME]), score: e[P_SCORE], kills: e[P_KILLS], deaths: e[P_DEATHS],
        own: id === this.playerId, bot: (e[P_FLAGS] & FLAG_BOT) !== 0,
        connected: (e[P_FLAGS] & FLAG_CONNECTED) !== 0, color: playerColor(id),
      });
    }
    scoreboard.sort((a, b) => b.score - a.score || b.kills - a.kills || a.id - b.id);
    const own = latest.get(this.playerId);
    let banner = "";
    const status = this.link ? this.link.status.state : "";
    if (status === "reconnecting") banner = "Connection lost — reconnecting…";
    else if (this.phase === "playing" && own && !(own[P_FLAGS] & FLAG_ALIVE)) banner = "Eliminated — respawning…";
    else if (this.phase === "playing" && this.playerId === 0) banner = "Spectating";
    let cursor = null;
    const ptr = this.controls.pointer;
    if (ptr && !this.controls.usedTouch) {
      const tr = worldTransform(this.canvas.width, this.canvas.height, this.config.width,
        this.config.height, dpr);
      cursor = { x: (ptr.x * dpr - tr.ox) / tr.scale, y: (ptr.y * dpr - tr.oy) / tr.scale };
    }
    return {
      config: this.config, dpr, time: now / 1000, players, pickups: state.pickups,
      projectiles: state.projectiles, floaters: this.floaters, feed: this.feed, scoreboard,
      clockSeconds: state.clock / this.config.sim_hz, mode: this.config.mode || "arena",
      scoreLimit: this.config.score_limit, rtt: this.link ? this.link.rtt : null,
      transport: this.link ? this.link.transport : "", linkState: status, banner, cursor,
      damageFlash: this.damageFlash, touch: this.controls.usedTouch ? { stick: this.controls.stick } : null,
    };
  }

  playEvents(rt) {
    if (!this.pendingEvents.length) return;
    const due = [];
    this.pendingEvents = this.pendingEvents.filter((p) => (p.tick <= rt + 0.5 ? (due.push(p), false) : true));
    const ents = this.snapshots.latest.entities;
    const name = (id) => { const e = ents.get(id); return e && e[0] === PLAYER ? String(e[P_NAME]) : `#${id}`; };
    const pos = (id) => { const e = ents.get(id); return e ? { x: e[P_X] / 10, y: e[P_Y] / 10 } : null; };
    for (const { ev } of due) {
      if (ev.type === EV_HIT) {
        this.flashes.set(ev.target, 1);
        const p = pos(ev.target);
        if (p) this.floaters.push({ text: `-${ev.damage}`, x: p.x, y: p.y - 20, age: 0, color: "#ff8a80" });
        if (ev.target === this.playerId) this.damageFlash = 1;
      } else if (ev.type === EV_KILL) {
        const text = ev.killer === ev.victim || !ents.has(ev.killer)
          ? `${name(ev.victim)} was eliminated` : `${name(ev.killer)} ✦ ${name(ev.victim)}`;
        const mine = ev.killer === this.playerId || ev.victim === this.playerId;
        this.feed.push({ text, ttl: 5, color: mine ? "#ffd54f" : "#c9d6ea" });
      } else if (ev.type === EV_PICKUP) {
        const p = pos(ev.player);
        if (p) this.floaters.push({ text: ev.sort === 2 ? "+hp" : "+1", x: p.x, y: p.y - 20, age: 0, color: ev.sort === 2 ? "#66bb6a" : "#ffd54f" });
      } else if (ev.type === EV_JOINED) {
        this.feed.push({ text: `${ev.name} joined`, ttl: 4 });
      } else if (ev.type === EV_LEFT) {
        this.feed.push({ text: `${name(ev.player)} left`, ttl: 4 });
      } else if (ev.type === EV_RESPAWN && ev.player === this.playerId) {
        this.forceSend = true;
      }
    }
  }

  // --- the end -----------------------------------------------------------------------------

  end() {
    if (this.phase === "ended") return;
    this.phase = "ended";
    if (this.link) this.link.close(1000, "match over");
    this.showOverlay();
  }

  fail(text) {
    this.phase = "error";
    this.error = this.error || { code: 0, reason: text };
    this.setMessage(text, ["Back to the lobby to play again."]);
    if (this.snapshots) this.snapshots.reset();
    this.showOverlay(text);
  }

  showOverlay(errorText = null) {
    if (this.overlay) this.overlay.remove();
    const div = document.createElement("div");
    div.className = "arena-overlay";
    div.setAttribute("role", "dialog");
    Object.assign(div.style, {
      position: "fixed", left: "50%", top: "50%", transform: "translate(-50%, -50%)",
      background: "rgba(10,15,30,0.94)", color: "#e8eef7", padding: "24px 28px",
      borderRadius: "12px", border: "1px solid #2f4470", font: "15px system-ui, sans-serif",
      minWidth: "340px", boxShadow: "0 12px 40px rgba(0,0,0,0.5)", zIndex: 10,
    });
    const h = document.createElement("h2");
    h.style.margin = "0 0 12px";
    if (errorText) {
      h.textContent = errorText;
      div.append(h);
    } else {
      const me = (this.results || []).find((r) => r.playerId === this.playerId);
      h.textContent = me && me.placement === 1 ? "Victory!" : (me ? `Placed #${me.placement}` : "Match over");
      const sub = document.createElement("div");
      sub.style.color = "#8ea2c4";
      sub.style.marginBottom = "12px";
      sub.textContent = { score: "Score limit reached", time: "Time is up", aborted: "Match aborted" }[this.endReason] || "";
      const table = document.createElement("table");
      table.className = "arena-results";
      table.style.borderCollapse = "collapse";
      table.style.width = "100%";
      const head = table.insertRow();
      for (const t of ["#", "Player", "Score", "Kills", "Deaths"]) {
        const th = document.createElement("th");
        th.textContent = t;
        Object.assign(th.style, { textAlign: "left", padding: "4px 8px", color: "#8ea2c4", fontWeight: 600 });
        head.append(th);
      }
      for (const r of this.results || []) {
        const tr = table.insertRow();
        if (r.playerId === this.playerId) tr.style.background = "rgba(79,195,247,0.15)";
        for (const v of [r.placement, r.name + (r.bot ? " [bot]" : ""), r.score, r.kills, r.deaths]) {
          const td = tr.insertCell();
          td.textContent = String(v);
          td.style.padding = "4px 8px";
        }
      }
      div.append(h, sub, table);
    }
    const links = document.createElement("div");
    links.style.marginTop = "16px";
    links.style.display = "flex";
    links.style.gap = "16px";
    if (this.matchId && !errorText) {
      const a = document.createElement("a");
      a.href = `${this.matchUrl}${encodeURIComponent(this.matchId)}/`;
      a.textContent = "Match page";
      a.className = "arena-match-link";
      a.style.color = "#4fc3f7";
      links.append(a);
    }
    if (this.playUrl) {
      const again = document.createElement("a");
      again.href = this.playUrl;
      again.textContent = "Play again";
      again.style.color = "#4fc3f7";
      links.append(again);
    }
    const lobby = document.createElement("a");
    lobby.href = "/";
    lobby.textContent = "Lobby";
    lobby.style.color = "#4fc3f7";
    links.append(lobby);
    div.append(links);
    (this.canvas.parentElement || document.body).append(div);
    this.overlay = div;
  }

  /** Page coordinates (css px) of world point (x, y) as currently drawn. */
  screenOf(x, y) {
    const dpr = pixelRatio();
    const tr = worldTransform(this.canvas.width, this.canvas.height, this.config.width,
      this.config.height, dpr);
    const r = this.canvas.getBoundingClientRect();
    return { x: r.left + (tr.ox + x * tr.scale) / dpr, y: r.top + (tr.oy + y * tr.scale) / dpr };
  }

  /** For tests and the debug HUD: a plain snapshot of what the client knows. */
  debugState() {
    const latest = this.snapshots && this.snapshots.latest;
    const players = [];
    const projectiles = [];
    if (latest) {
      for (const [id, e] of latest.entities) {
        if (e[0] === PROJECTILE) projectiles.push({ id, owner: e[PR_OWNER], born: e[PR_BORN] });
        if (e[0] !== PLAYER) continue;
        players.push({
          id, name: String(e[P_NAME]), x: e[P_X] / 10, y: e[P_Y] / 10, aim: e[P_AIM], hp: e[P_HP],
          score: e[P_SCORE], kills: e[P_KILLS], deaths: e[P_DEATHS], flags: e[P_FLAGS], ack: e[P_ACK],
        });
      }
    }
    return {
      phase: this.phase, playerId: this.playerId, matchId: this.matchId,
      tick: latest ? latest.tick : 0, clock: latest ? latest.clock : 0, players, projectiles,
      predicted: this.prediction && this.prediction.valid
        ? { x: this.prediction.x / 10, y: this.prediction.y / 10 } : null,
      transport: this.link ? this.link.transport : "", link: this.link ? this.link.status.state : "",
      connected: !!(this.link && this.link.status.state === "open" && this.link.welcomed),
      rtt: this.link ? this.link.rtt : null, reconnects: this.link ? this.link.reconnects : 0,
      linkHistory: this.link ? this.link.history.slice() : [],
      results: this.results, endReason: this.endReason, error: this.error, seq: this.seq,
      stats: { ...this.stats },
    };
  }

  destroy() {
    this.running = false;
    clearInterval(this.interval);
    window.removeEventListener("resize", this.onResize);
    this.controls.destroy();
    if (this.link) this.link.close(1000, "page closed");
    if (this.overlay) this.overlay.remove();
  }
}

