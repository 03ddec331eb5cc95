// Entry point of the replay player, bundled as the global `ArenaReplay` (static/build.mjs).
//
//   ArenaReplay.watch({framesUrl: "/matches/<id>/replay.frames"})
//
// Fetches the match's frames file over plain HTTP (no websocket, no node), and plays it
// with the game's own browser module (viewer.js): play/pause, speed, a seek bar, follow a
// player, the scoreboard of the drawn moment, and a share link (`?t=<tick>&p=<player>`;
// `#t=` works too). It binds to the page's controls by id (all optional but the canvas):
// #replay-canvas, #replay-play, #replay-seek, #replay-time, #replay-speed, #replay-follow,
// #replay-share, #replay-share-link, #replay-scoreboard, #replay-status.
// `window.__replay` is for tests and debugging.
import { FramesError, readFrames } from "./frames.js";
import { GameLoadError } from "./games.js";
import { SPEEDS, clockText, parseShare, shareLink } from "./playback.js";
import { ReplaySession } from "./viewer.js";

export { readFrames, ReplaySession, SPEEDS };

const SEEK_KEY_SECONDS = 5; // ← and → jump this far

/** The error text for a failed fetch of the frames file. */
function fetchError(status) {
  if (status === 404) return "This match has no replay to watch (yet)";
  return `The replay could not be fetched (HTTP ${status})`;
}

/**
 * Watch the replay at `framesUrl` on the page. Resolves to the `ReplaySession` (or null
 * when the file could not be fetched, read or its game loaded: the page says why).
 */
export async function watch({ framesUrl, root = document, href = location.href } = {}) {
  const $ = (id) => root.getElementById(id);
  const canvas = $("replay-canvas");
  const status = $("replay-status");
  const api = { session: null, error: null, loaded: false };
  window.__replay = Object.defineProperty(api, "state", {
    get() {
      return api.session ? { ...api.session.debugState(), error: api.error }
        : { phase: api.error ? "error" : "loading", error: api.error };
    },
  });
  const fail = (text) => {
    api.error = text;
    if (status) { status.textContent = text; status.hidden = false; }
    if (api.session) api.session.error = text;
  };
  if (status) { status.textContent = "Loading the replay…"; status.hidden = false; }
  let timeline;
  try {
    const r = await fetch(framesUrl, { credentials: "same-origin" });
    if (!r.ok) { fail(fetchError(r.status)); return null; }
    timeline = await readFrames(new Uint8Array(await r.arrayBuffer()));
  } catch (e) {
    fail(e instanceof FramesError ? `This replay cannot be played: ${e.message}`
      : `The replay could not be fetched (${(e && e.message) || e})`);
    return null;
  }
  const session = new ReplaySession(canvas, timeline);
  api.session = session;
  try {
    await session.load();
  } catch (e) {
    fail(e instanceof GameLoadError ? e.message : `The game failed to start (${(e && e.message) || e})`);
    return null;
  }
  if (status) status.hidden = true;
  bindControls(session, $, href);
  api.loaded = true;
  api.seek = (t) => session.seek(t);
  api.follow = (id) => session.follow(id);
  return session;
}

/** The page's controls, bound to the session, and the animation loop that keeps them. */
function bindControls(session, $, href) {
  const tl = session.timeline;
  const play = $("replay-play"), seek = $("replay-seek"), time = $("replay-time");
  const speed = $("replay-speed"), follow = $("replay-follow"), board = $("replay-scoreboard");
  const share = $("replay-share"), link = $("replay-share-link");
  const at = parseShare(href);
  let dragging = false; // the seek bar follows the clock unless its thumb is held
  if (at.player !== null) session.follow(at.player);

  if (seek) {
    seek.min = String(tl.first);
    seek.max = String(tl.last);
    seek.step = "1";
    seek.addEventListener("input", () => session.seek(Number(seek.value)));
    seek.addEventListener("pointerdown", () => { dragging = true; });
    window.addEventListener("pointerup", () => { dragging = false; });
  }
  if (play) play.addEventListener("click", () => session.toggle());
  if (speed) {
    if (!speed.options.length) {
      for (const s of SPEEDS) speed.add(new Option(`${s}x`, String(s), s === 1, s === 1));
    }
    speed.value = "1";
    speed.addEventListener("change", () => session.setSpeed(Number(speed.value)));
  }
  if (follow) {
    follow.add(new Option("Nobody (the whole field)", "0"));
    for (const p of tl.players) follow.add(new Option(`${p.name}${p.bot ? " [bot]" : ""}`, String(p.id)));
    follow.value = String(session.playerId);
    follow.addEventListener("change", () => { session.follow(Number(follow.value)); drawBoard(true); });
  }
  if (share) {
    share.addEventListener("click", () => {
      const url = shareLink(href, session.tick, session.playerId);
      if (link) { link.value = url; link.hidden = false; link.select(); }
      if (navigator.clipboard) navigator.clipboard.writeText(url).catch(() => {});
    });
  }
  document.addEventListener("keydown", (e) => {
    const tag = e.target && e.target.tagName;
    if (tag === "INPUT" || tag === "SELECT" || tag === "TEXTAREA" || tag === "BUTTON") return;
    if (e.code === "Space") { session.toggle(); e.preventDefault(); }
    else if (e.code === "ArrowLeft") session.seek(session.tick - SEEK_KEY_SECONDS * tl.simHz);
    else if (e.code === "ArrowRight") session.seek(session.tick + SEEK_KEY_SECONDS * tl.simHz);
  });

  let shown = null;
  function drawBoard(force = false) {
    if (!board) return;
    const s = session.scoreboard();
    const key = `${s.tick}/${s.final}/${session.playerId}`;
    if (!force && key === shown) return;
    shown = key;
    board.dataset.tick = String(s.tick);
    board.dataset.final = String(s.final);
    board.replaceChildren();
    const head = board.createTHead().insertRow();
    const cols = [["#", (r) => r.placement], ["Player", (r) => r.name + (r.bot ? " [bot]" : "")],
      ["Score", (r) => r.score], ...tl.schema.results.map((c) => [c.label, (r) => r.stats[c.name] ?? ""])];
    for (const [label] of cols) {
      const th = document.createElement("th");
      th.textContent = label;
      head.append(th);
    }
    const body = board.createTBody();
    for (const r of s.rows) {
      const tr = body.insertRow();
      tr.dataset.player = String(r.playerId);
      if (r.playerId === session.playerId) tr.className = "followed";
      for (const [, value] of cols) tr.insertCell().textContent = String(value(r) ?? "");
    }
  }

  if (at.tick !== null) session.seek(at.tick); // a shared moment opens paused there
  else session.play();
  const loop = (now) => {
    requestAnimationFrame(loop);
    session.frame(now);
    const t = session.tick;
    if (seek && !dragging) seek.value = String(Math.round(t));
    if (time) time.textContent = `${clockText(t, tl.simHz)} / ${clockText(tl.last, tl.simHz)}`;
    if (play) play.textContent = session.playback.playing ? "Pause" : "Play";
    drawBoard();
  };
  requestAnimationFrame(loop);
}
