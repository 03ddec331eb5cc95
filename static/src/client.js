// Entry point of the browser client shell, bundled as the global `Arena` (static/build.mjs).
//
//   Arena.start({api: "/api", matchUrl: "/matches/"})   the lobby's game page: queue, then play
//   Arena.connect({nodeUrl, token, matchUrl})           play a seat token directly (dev pages)
//
// Both draw on <canvas id="arena"> (or `canvas`) and expose `window.__arena` for tests. The
// game itself (drawing, input, prediction) is the browser module of the game the node's
// `welcome` names, loaded then (games.js).
import { Match } from "./match.js";
import { GAMES } from "./games.js";

export { Match, GAMES };
export * as codec from "./codec.js";

const POLL_MS = 500; // queue status polling (the fallback without EventSource)
const MAX_POLL_ERRORS = 20; // consecutive failed polls (10 s) before giving up
const MAX_STREAM_ERRORS = 10; // event-stream reconnections without an event before polling

function canvasOf(canvas) {
  const c = canvas || document.getElementById("arena");
  if (!c) throw new Error("Arena: no <canvas id=\"arena\"> on the page");
  if (!c.style.width && !c.getAttribute("width")) fill(c);
  c.tabIndex = 0;
  c.style.outline = "none";
  c.style.touchAction = "none";
  return c;
}

/** Let a canvas without a size of its own take the rest of the viewport. */
function fill(c) {
  const size = () => { // the parent's top: the canvas's own moves as it is centred
    const box = (c.parentElement || c).getBoundingClientRect();
    c.style.width = "100%";
    c.style.height = `${Math.max(320, window.innerHeight - box.top - window.scrollY - 8)}px`;
  };
  c.style.display = "block";
  size();
  window.addEventListener("resize", size);
}

function expose(game, extra = {}) {
  const api = {
    game,
    get state() { return game.debugState(); },
    get connected() { return game.debugState().connected; },
    get transport() { return game.link ? game.link.transport : ""; },
    get playerId() { return game.playerId; },
    get gameName() { return game.gameName; },
    get results() { return game.results; },
    /** Close the socket as a network drop would; the client resumes the seat. */
    drop() { if (game.link) game.link.drop(); },
    /** Page coordinates (css px) of a point in wire units, to aim the mouse in tests. */
    screenOf(x, y) { return game.screenOf(x, y); },
    ...extra,
  };
  window.__arena = api;
  return api;
}

/** Play a seat token on a node directly. */
export function connect({ nodeUrl, token, matchUrl = "/matches/", canvas = null,
  rawWebSocket = true } = {}) {
  const game = new Match(canvasOf(canvas), { matchUrl });
  expose(game);
  game.connect(nodeUrl, token, { rawWebSocket });
  game.canvas.focus();
  return game;
}

function cookie(name) {
  for (const part of document.cookie.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return decodeURIComponent(v.join("="));
  }
  return "";
}

class Api {
  constructor(base) {
    this.base = base.replace(/\/+$/, "");
    this.csrf = "";
  }

  async csrfToken() {
    this.csrf = cookie("csrftoken") || this.csrf;
    if (!this.csrf) {
      const r = await this.call("GET", "/csrf");
      this.csrf = cookie("csrftoken") || r.body.csrf || "";
    }
    return this.csrf;
  }

  /** JSON request; resolves to {status, body} (never throws on an HTTP error status). */
  async call(method, path, body) {
    const headers = { Accept: "application/json" };
    if (method !== "GET") {
      headers["Content-Type"] = "application/json";
      headers["X-CSRFToken"] = await this.csrfToken();
    }
    const r = await fetch(this.base + path, {
      method, headers, credentials: "same-origin",
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    let data = {};
    try { data = await r.json(); } catch (e) { data = {}; }
    return { status: r.status, body: data };
  }
}

/**
 * The lobby's game page: queue for a match (as the signed-in user, or a new guest if
 * nobody is signed in), show the wait, then play the seat the lobby hands out.
 */
export function start({ api = "/api", matchUrl = "/matches/", canvas = null, mode = null,
  rawWebSocket = true } = {}) {
  const game = new Match(canvasOf(canvas), { matchUrl, playUrl: location.pathname + location.search });
  const client = new Api(api);
  // the mode to queue for: the option, else the page's ?mode= (the lobby's mode links)
  mode = mode || new URLSearchParams(location.search).get("mode") || null;
  const status = { queue: "starting", waited: 0, matchId: "", error: "" };
  expose(game, { queue: status, cancel: () => cancel() });
  let stopped = false;

  const fail = (text) => {
    status.queue = "error";
    status.error = text;
    game.fail(text);
  };

  async function cancel() {
    stopped = true;
    await client.call("DELETE", "/queue");
    status.queue = "cancelled";
    game.fail("Left the queue");
  }

  async function enqueue() {
    const body = mode ? { mode } : {};
    let r = await client.call("POST", "/queue", body);
    if (r.status === 401 || r.status === 403) { // nobody signed in: play as a new guest
      const g = await client.call("POST", "/guest", {});
      if (g.status !== 200) return fail(`Could not sign in as a guest (${g.status})`);
      client.csrf = ""; // signing in rotates the CSRF token
      r = await client.call("POST", "/queue", body);
    }
    if (r.status !== 200 && r.status !== 409) {
      return fail(r.body.error || `Could not join the queue (${r.status})`);
    }
    return typeof EventSource === "function" ? listen() : poll();
  }

  /** What a queue state (the stream's `state`/`matched`, or GET /api/queue) means. */
  function show(b, began) {
    if (b.status === "matched") {
      status.queue = "matched";
      status.matchId = b.match_id;
      game.connect(b.node_url, b.token, { rawWebSocket });
      return true;
    }
    if (b.status === "none") {
      fail("The queue ticket is gone");
      return true;
    }
    status.queue = b.status;
    status.waited = Number(b.waited) || (Date.now() - began) / 1000;
    const where = b.position ? ` · #${b.position} in the queue` : "";
    const eta = b.estimated_wait != null ? ` · match within ${b.estimated_wait} s` : "";
    game.setMessage("Finding a match…", [
      `${b.mode ? `${b.mode} · ` : ""}waiting ${Math.floor(status.waited)} s${where}${eta}`,
      b.error ? `No game node is available right now (${b.error})` : "Esc to leave the queue"]);
    return false;
  }

  /** The lobby's event stream (Server-Sent Events): told the moment the match forms. */
  function listen() {
    const began = Date.now();
    const source = new EventSource(`${client.base}/events`);
    status.transport = "events";
    let errors = 0;
    let last = {};
    const done = () => { source.close(); clearInterval(clock); };
    const clock = setInterval(() => { // the wait counts up between events
      if (status.queue === "waiting") show({ ...last, waited: status.waited + 1 }, began);
    }, 1000);
    const on = (kind, handle) => source.addEventListener(kind, (e) => {
      errors = 0;
      if (stopped) return done();
      const b = JSON.parse(e.data);
      if (handle(b)) done();
      return undefined;
    });
    on("state", (b) => { last = b; return show(b, began); });
    on("matched", (b) => show(b, began));
    on("queue", (b) => { last = { ...last, ...b, status: "waiting" }; return show(last, began); });
    source.onerror = () => {
      // EventSource reconnects by itself (with Last-Event-ID); a stream refused or
      // failing again and again: fall back to polling GET /api/queue
      if (source.readyState === EventSource.CLOSED || ++errors >= MAX_STREAM_ERRORS) {
        done();
        if (!stopped && status.queue !== "matched") poll();
      }
    };
    window.addEventListener("pagehide", done);
  }

  async function poll() {
    status.transport = "polling";
    let errors = 0;
    const began = Date.now();
    while (!stopped) {
      let r;
      try {
        r = await client.call("GET", "/queue");
      } catch (e) {
        r = { status: 0, body: {} };
      }
      if (r.status !== 200) {
        if (++errors >= MAX_POLL_ERRORS) return fail("The lobby does not answer");
      } else {
        errors = 0;
        if (show(r.body, began)) return undefined;
      }
      await new Promise((res) => setTimeout(res, POLL_MS));
    }
    return undefined;
  }

  const onKey = (e) => {
    if (e.code === "Escape" && (status.queue === "waiting" || status.queue === "starting")) cancel();
  };
  window.addEventListener("keydown", onKey);
  game.phase = "queue";
  game.setMessage("Joining the queue…");
  game.canvas.focus();
  enqueue().catch((e) => fail(`Lobby error: ${e.message}`));
  return game;
}
