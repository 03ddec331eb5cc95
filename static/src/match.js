// One match on one canvas, for any game: the link to the node, the snapshot buffer, the
// local clock and inputs, prediction timing, events, the end screen. What the game looks
// like, how keys become input values and how its player moves come from the game's
// browser module, loaded when the `welcome` names the game (docs/client.md).
import { DELTA, ERROR, EVENT, KEYFRAME, WELCOME, EV_MATCH_END, encodeInput } from "./codec.js";
import { NodeLink } from "./net.js";
import { Controls } from "./input.js";
import { Prediction } from "./predict.js";
import { Schema } from "./schema.js";
import { Snapshots, interpolate } from "./snapshots.js";
import { GameLoadError, createGame, loadGame } from "./games.js";
import { makeKit } from "./kit.js";
import { drawMessage, drawShellHud, drawTouch, fitCanvas, fitWorld, pixelRatio } from "./render.js";

const MAX_INPUT_RATE = 20; // inputs per second at most (the node allows 60)
const KEEPALIVE_MOVING_MS = 250; // resend the input this often while it moves the player
const KEEPALIVE_IDLE_MS = 1000;
const MAX_CATCH_UP_TICKS = 5; // local ticks run in one go after a stall; beyond, skipped
const SMOOTH_S = 0.1; // time constant of the visual offset hiding prediction corrections

const CLOSE_TEXT = {
  4010: "The seat token was refused", 4011: "The seat token expired",
  4012: "The seat token was already used", 4013: "The seat is on another node",
  4014: "The game node is full", 4015: "The seat could not be resumed",
  4016: "This seat was opened in another tab", 4018: "The game could not start on the node",
  4030: "The game node is shutting down", 4040: "This match is already over",
  4004: "Too many inputs", 4005: "Join timed out",
};
const END_TEXT = { score: "Score limit reached", time: "Time is up", aborted: "Match aborted" };

export class Match {
  /**
   * @param canvas the <canvas> to draw on
   * @param opts {matchUrl, playUrl, loader}: matchUrl + match_id + "/" is the lobby's match
   *   page, playUrl (optional) the page that queues for another match, loader (tests) the
   *   function that finds a game's module factory by name (default `loadGame`)
   */
  constructor(canvas, { matchUrl = "/matches/", playUrl = null, loader = loadGame } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.matchUrl = matchUrl;
    this.playUrl = playUrl;
    this.loader = loader;
    this.controls = new Controls(canvas);
    this.link = null;
    this.config = null;
    this.schema = null;
    this.gameName = "";
    this.game = null; // the game's browser module instance, once loaded
    this.playerId = 0;
    this.followId = 0; // a spectator's followed player (0: the whole field)
    this.factory = null; // the game's module factory, to make the module anew for another view
    this.followSelect = null; // a spectator's player picker
    this.followKey = ""; // the players it lists
    this.matchId = "";
    this.snapshots = null;
    this.prediction = null;
    this.phase = "idle"; // idle | queue | connecting | loading | playing | ended | error
    this.message = { title: "Connecting", lines: [] };
    this.results = null;
    this.endReason = "";
    this.error = null;
    this.pendingEvents = []; // {tick, ev}, played when the render tick reaches them
    this.smooth = []; // visual offset per predicted field, hiding corrections
    this.seq = 0;
    this.sentValues = null; // the values of the last input sent
    this.current = null; // the values the node applies for us now (null: none, or inactive)
    this.lastSendAt = 0;
    this.forceSend = false;
    this.localTick = 0;
    this.tickStart = 0;
    this.ownActive = false;
    this.ownAck = 0;
    this.ownNamed = null; // the own entity's named fields in the latest patch
    this.lastView = null;
    this.layout = null;
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
      if (this.prediction) this.prediction.reset();
    } else if (s.state === "closed" && this.phase !== "ended" && this.phase !== "error") {
      if (this.results) this.end();
      else this.fail(CLOSE_TEXT[s.code] || `Disconnected (${s.code} ${s.reason || ""})`.trim());
    }
  }

  onMessage(msg) {
    const now = performance.now();
    if (this.phase === "error") return undefined;
    switch (msg.type) {
      case WELCOME: return this.welcome(msg, now);
      case KEYFRAME:
        if (!this.snapshots) return undefined;
        this.snapshots.keyframe(msg.tick, msg.clock, msg.entities, now);
        return this.patched(msg);
      case DELTA:
        if (!this.snapshots) return undefined;
        if (!this.snapshots.delta(msg, now)) { this.stats.deltasSkipped++; return undefined; }
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
    this.playerId = msg.playerId;
    this.matchId = msg.matchId;
    this.forceSend = true; // the node zeroed our input while we were away
    if (!first) { // a resume: the old picture stays until the keyframe
      if (this.prediction) this.prediction.reset();
      return;
    }
    this.config = msg.config;
    try {
      this.schema = new Schema(this.config.schema);
    } catch (e) {
      this.fail(`The node sent no game schema (${e.message})`, true);
      return;
    }
    this.gameName = String(this.config.game ?? "");
    this.snapshots = new Snapshots(this.config.sim_hz, this.config.patch_hz);
    this.tickStart = now;
    this.localTick = 0;
    this.phase = "loading";
    this.setMessage("Loading the game…", [this.gameName]);
    this.startGame();
  }

  /** Load the game's browser module; a game this client cannot play is said on screen. */
  async startGame() {
    let game;
    try {
      this.factory = await this.loader(this.gameName);
      game = this.makeGame();
    } catch (e) {
      const text = e instanceof GameLoadError ? e.message
        : `The game "${this.gameName}" failed to start (${e && e.message})`;
      this.fail(text, true);
      return;
    }
    if (this.phase !== "loading") return; // ended or failed meanwhile
    this.game = game;
    if (game.predict && this.playerId > 0) {
      // the step also sees the own entity's fields in the latest patch (e.g. a speed boost)
      this.prediction = new Prediction((s, v) => game.predict.step(s, v, this.ownNamed));
      this.smooth = game.predict.fields.map(() => 0);
    }
    this.phase = "playing";
    const latest = this.snapshots.latest;
    if (latest) this.patched({ tick: latest.tick, events: [] });
  }

  /** The game's module, made for the viewed player: the own one, or the one a spectator
   * follows (as a replay's followed player: viewer.js). */
  makeGame() {
    return createGame(this.factory, makeKit({ ...this.config, schema: this.schema }, this.viewId),
      this.gameName);
  }

  /** Whose view is drawn: the own player's, else the followed one's (0: the whole field). */
  get viewId() {
    return this.playerId || this.followId;
  }

  /** The players a spectator may follow: entities with a `name` field, `[{id, name}]`. */
  followable() {
    const latest = this.snapshots && this.snapshots.latest;
    const out = [];
    if (!latest || !this.schema) return out;
    for (const [id, e] of latest.entities) {
      const kind = this.schema.kind(e[0]);
      if (kind && kind.index.name !== undefined) out.push({ id, name: String(e[kind.index.name]) });
    }
    return out.sort((a, b) => a.id - b.id);
  }

  /** A spectator follows player `id` (0: nobody): the module is made anew for that view. */
  follow(id) {
    if (this.playerId !== 0) return;
    this.followId = this.followable().some((p) => p.id === id) ? id : 0;
    if (this.factory && this.game) this.game = this.makeGame();
    if (this.followSelect) this.followSelect.value = String(this.followId);
  }

  /** A spectator's picker of the players to follow, kept to the players in the state. */
  updateFollowSelect() {
    if (this.playerId !== 0 || typeof document === "undefined") return;
    const players = this.followable();
    const key = players.map((p) => `${p.id}:${p.name}`).join("|");
    let select = this.followSelect;
    if (select && this.followKey === key) return;
    if (!select) {
      select = document.createElement("select");
      select.className = "arena-follow";
      select.setAttribute("aria-label", "Follow a player");
      Object.assign(select.style, { position: "fixed", right: "12px", bottom: "12px", zIndex: 5,
        font: "14px system-ui, sans-serif" });
      select.onchange = () => this.follow(Number(select.value));
      document.body.append(select);
      this.followSelect = select;
    }
    this.followKey = key;
    const options = [{ id: 0, name: "Whole field" }, ...players].map((p) => {
      const o = document.createElement("option");
      o.value = String(p.id);
      o.textContent = p.id ? `Follow ${p.name}` : p.name;
      return o;
    });
    select.replaceChildren(...options);
    select.value = String(this.followId);
  }

  /** The own player's wire entity (id == player_id, whatever its kind), or null. */
  ownEntity() {
    const latest = this.snapshots && this.snapshots.latest;
    return this.playerId && latest ? latest.entities.get(this.playerId) || null : null;
  }

  patched(msg) {
    this.stats.patches++;
    this.queueEvents(msg.tick, msg.events);
    if (this.game) this.updateFollowSelect();
    const own = this.ownEntity();
    if (!own || !this.game) return;
    const kind = this.schema.kind(own[0]);
    if (!kind) return;
    const ackAt = kind.ack;
    this.ownAck = ackAt === null ? 0 : own[ackAt];
    this.ownNamed = kind.named(own);
    const active = this.game.active ? Boolean(this.game.active(this.ownNamed)) : true;
    if (active && !this.ownActive) this.forceSend = true; // (re)spawned: the node reset our input
    this.ownActive = active;
    if (!this.prediction) return;
    const state = this.game.predict.fields.map((f) => own[kind.index[f]]);
    const err = this.prediction.reconcile(msg.tick, state, this.ownAck, active);
    if (err.some((e) => e !== 0)) {
      this.stats.corrections++;
      const snap = this.game.predict.snap ?? Infinity;
      if (Math.hypot(...err) > snap) this.smooth = this.smooth.map(() => 0); // a teleport
      else this.smooth = this.smooth.map((s, i) => s + err[i]);
    }
  }

  queueEvents(tick, events) {
    for (const e of events || []) {
      if (!this.schema) continue;
      const ev = this.schema.readEvent(e);
      if (ev.code === EV_MATCH_END) {
        this.results = ev.data.results;
        this.endReason = String(ev.data.reason ?? "");
        this.end();
      } else {
        this.pendingEvents.push({ tick, ev });
      }
    }
  }

  // --- the clock: local ticks, inputs ------------------------------------------------------

  update(now) {
    if (!this.running || !this.game || this.phase !== "playing") return;
    const hz = this.config.sim_hz;
    const target = Math.floor(((now - this.tickStart) * hz) / 1000);
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
    const canPlay = this.playerId > 0 && link && link.welcomed && this.ownActive;
    if (canPlay) {
      const values = this.schema.clamp(this.game.input(this.controls, this.inputView()));
      const s = this.sentValues;
      const changed = !s || values.some((v, i) => v !== s[i]);
      const moving = values.some((v, i) => v !== 0 && !this.schema.inputs[i].wrap);
      const held = this.game.hold ? Boolean(this.game.hold(values)) : false;
      const keepalive = now - this.lastSendAt >= (moving ? KEEPALIVE_MOVING_MS : KEEPALIVE_IDLE_MS);
      const allowed = now - this.lastSendAt >= 1000 / MAX_INPUT_RATE - 4;
      if (allowed && (changed || held || keepalive || this.forceSend)) {
        const seq = this.seq + 1;
        if (link.send(encodeInput(seq, values))) {
          this.seq = seq;
          this.stats.inputsSent++;
          this.sentValues = values;
          this.current = values;
          this.lastSendAt = now;
          this.forceSend = false;
          this.controls.clicked = false;
          if (this.prediction) this.prediction.sentInput(seq, this.localTick);
        }
      }
    } else {
      this.current = null;
      this.controls.clicked = false; // a click while inactive or away does not act later
    }
    if (this.prediction) {
      this.prediction.tick(this.localTick, this.seq, this.current,
        Boolean(canPlay && this.current && link.status.state === "open"));
    }
  }

  /** What `input()` sees: the last drawn view, with the pointer where it is now. */
  inputView() {
    const v = this.lastView || { own: null, config: this.config, schema: this.schema };
    return { ...v, pointer: this.pointerWorld() };
  }

  /** The pointer in world units (null without one, or on a touch screen's stick). */
  pointerWorld() {
    const p = this.controls.pointer;
    const tr = this.layout;
    if (!p || !tr) return null;
    const dpr = tr.dpr || pixelRatio();
    return { x: (p.x * dpr - tr.ox) / tr.scale, y: (p.y * dpr - tr.oy) / tr.scale };
  }

  // --- drawing -----------------------------------------------------------------------------

  frame(now) {
    if (!this.running) return;
    requestAnimationFrame(this.frame);
    this.update(now);
    const dt = Math.min(0.1, (now - this.lastFrame) / 1000);
    this.lastFrame = now;
    const { w, h, dpr } = fitCanvas(this.canvas);
    const playing = this.game && (this.phase === "playing" || this.phase === "ended");
    const cursor = playing && this.phase === "playing" && !this.controls.usedTouch
      ? (this.game.cursor || "default") : "default";
    if (this.canvas.style.cursor !== cursor) this.canvas.style.cursor = cursor;
    if (!playing || !this.snapshots || !this.snapshots.latest) {
      drawMessage(this.ctx, w, h, dpr, this.message.title, this.message.lines, now / 1000);
      return;
    }
    const view = this.view(now, dt, w, h, dpr);
    this.playEvents(view);
    this.game.draw(this.ctx, view);
    const status = view.link.state;
    let banner = "";
    if (status === "reconnecting") {
      banner = view.link.reason === "moving to another server"
        ? "Moving to another server…" : "Connection lost — reconnecting…";
    }
    else if (this.phase === "playing" && this.playerId === 0) {
      const followed = this.followId && this.followable().find((p) => p.id === this.followId);
      banner = followed ? `Spectating · following ${followed.name}` : "Spectating";
    }
    else if (this.phase === "playing" && this.game.banner) banner = this.game.banner(view) || "";
    drawShellHud(this.ctx, w, h, { dpr, rtt: view.link.rtt, transport: view.link.transport,
      linkState: status, banner });
    if (view.touch) drawTouch(this.ctx, view.touch, dpr);
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

  /** World-to-canvas transform: the game's layout, or the world fitted to the canvas. */
  computeLayout(w, h, dpr) {
    const tr = this.game && this.game.layout ? this.game.layout(w, h, dpr)
      : fitWorld(w, h, this.config.width || 1000, this.config.height || 1000, dpr);
    return { ...tr, dpr };
  }

  /** The frame a game draws (docs/client.md, "The view"). */
  view(now, dt, w, h, dpr) {
    const latest = this.snapshots.latest;
    const rt = this.phase === "ended" ? latest.tick : this.snapshots.renderTick(now);
    const frame = interpolate(this.snapshots, rt, this.schema, this.game);
    const decay = Math.exp(-dt / SMOOTH_S);
    this.smooth = this.smooth.map((s) => s * decay);
    const own = this.viewId ? frame.entities.get(this.viewId) || null : null;
    let predicted = false;
    if (own) {
      own.own = true;
      const p = this.prediction;
      if (p && p.valid && this.ownActive && this.phase === "playing") {
        this.game.predict.fields.forEach((f, i) => { own[f] = p.state[i] + this.smooth[i]; });
        predicted = true;
      }
    }
    this.layout = this.computeLayout(w, h, dpr);
    const link = this.link;
    const view = {
      config: this.config, schema: this.schema, playerId: this.viewId, phase: this.phase,
      w, h, dpr, time: now / 1000, dt, tick: rt, clock: frame.clock,
      seconds: frame.clock / this.config.sim_hz, entities: frame.entities, gone: frame.gone,
      own, predicted, latest: latest.entities, layout: this.layout, pointer: null,
      touch: this.controls.usedTouch ? { stick: this.controls.stick } : null,
      link: { state: link ? link.status.state : "", transport: link ? link.transport : "",
        rtt: link ? link.rtt : null, reason: link ? link.status.reason : "" },
    };
    view.pointer = this.controls.usedTouch ? null : this.pointerWorld();
    this.lastView = view;
    return view;
  }

  playEvents(view) {
    if (!this.pendingEvents.length) return;
    const due = [];
    this.pendingEvents = this.pendingEvents.filter((p) => (p.tick <= view.tick + 0.5 ? (due.push(p), false) : true));
    if (!this.game.event) return;
    for (const { ev } of due) this.game.event(ev, view);
  }

  // --- the end -----------------------------------------------------------------------------

  end() {
    if (this.phase === "ended") return;
    this.phase = "ended";
    if (this.link) this.link.close(1000, "match over");
    this.showOverlay();
  }

  /** An error screen; `close` also closes the link (e.g. a game this client cannot play). */
  fail(text, close = false) {
    this.phase = "error";
    this.error = this.error || { code: 0, reason: text };
    // the canvas behind the dialog: the text if it is short, else a title (the dialog has it)
    this.setMessage(text.length <= 48 ? text : "This match cannot be played", ["Back to the lobby to play again."]);
    if (this.snapshots) this.snapshots.reset();
    if (close && this.link) this.link.close(1000, "client cannot play");
    this.showOverlay(text);
  }

  /** The result columns of the end screen: the common ones, then the game's own. */
  resultColumns() {
    const cols = [
      { label: "#", value: (r) => r.placement },
      { label: "Player", value: (r) => r.name + (r.bot ? " [bot]" : "") },
      { label: "Score", value: (r) => r.score },
    ];
    for (const c of (this.schema ? this.schema.results : [])) {
      cols.push({ label: c.label, value: (r) => r.stats[c.name] ?? "" });
    }
    return cols;
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
      sub.textContent = END_TEXT[this.endReason] || this.endReason;
      const table = document.createElement("table");
      table.className = "arena-results";
      table.style.borderCollapse = "collapse";
      table.style.width = "100%";
      const cols = this.resultColumns();
      const head = table.insertRow();
      for (const c of cols) {
        const th = document.createElement("th");
        th.textContent = c.label;
        Object.assign(th.style, { textAlign: "left", padding: "4px 8px", color: "#8ea2c4", fontWeight: 600 });
        head.append(th);
      }
      for (const r of this.results || []) {
        const tr = table.insertRow();
        if (r.playerId === this.playerId) tr.style.background = "rgba(79,195,247,0.15)";
        for (const c of cols) {
          const td = tr.insertCell();
          td.textContent = String(c.value(r));
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

  /** Page coordinates (css px) of a point given in wire units (as the state's fields are)
   * as currently drawn: the game's `unit` (wire units per world unit) converts. */
  screenOf(x, y) {
    const dpr = pixelRatio();
    const tr = this.layout || this.computeLayout(this.canvas.width, this.canvas.height, dpr);
    const r = this.canvas.getBoundingClientRect();
    const unit = (this.game && this.game.unit) || 1;
    x /= unit;
    y /= unit;
    return { x: r.left + (tr.ox + x * tr.scale) / dpr, y: r.top + (tr.oy + y * tr.scale) / dpr };
  }

  /** For tests and the debug HUD: a plain snapshot of what the client knows, by field
   * name, in wire units (docs/client.md, `window.__arena`). */
  debugState() {
    const latest = this.snapshots && this.snapshots.latest;
    const entities = [];
    const players = [];
    if (latest && this.schema) {
      for (const [id, e] of latest.entities) {
        const kind = this.schema.kind(e[0]);
        const v = { id, kind: kind ? kind.name : String(e[0]), ...(kind ? kind.named(e) : {}) };
        entities.push(v);
        if (kind && kind.ack !== null) players.push(v);
      }
    }
    const p = this.prediction;
    const predicted = p && p.valid && this.game && this.game.predict
      ? Object.fromEntries(this.game.predict.fields.map((f, i) => [f, p.state[i]])) : null;
    return {
      phase: this.phase, game: this.gameName, playerId: this.playerId, matchId: this.matchId,
      following: this.followId, followable: this.followable(),
      tick: latest ? latest.tick : 0, clock: latest ? latest.clock : 0, entities, players,
      predicted, ack: this.ownAck, seq: this.seq,
      transport: this.link ? this.link.transport : "", link: this.link ? this.link.status.state : "",
      connected: !!(this.link && this.link.status.state === "open" && this.link.welcomed),
      rtt: this.link ? this.link.rtt : null, reconnects: this.link ? this.link.reconnects : 0,
      moves: this.link ? this.link.moves : 0, nodeUrl: this.link ? this.link.nodeUrl : "",
      linkHistory: this.link ? this.link.history.slice() : [],
      results: this.results, endReason: this.endReason, error: this.error,
      resultColumns: this.schema ? this.schema.results.map((c) => c.label) : [],
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
    if (this.followSelect) this.followSelect.remove();
  }
}
