// Every lobby page but the game's: the top bar's "Live now" count (matches in progress,
// players in game) from the event stream's `live` channel, the home page's figures
// (players online: in game and in the queue; matches in progress), and the leaderboard page
// reloads its table when a match ends (a result may have moved it). The Live now and
// queue pages have streams of their own; without EventSource nothing happens.
(() => {
  const count = document.querySelector("[data-live-count]");
  if (!count || !window.EventSource || document.body.classList.contains("game")) return;
  if (document.getElementById("live-matches") || document.getElementById("waited")) return;
  const board = location.pathname.startsWith("/leaderboard");
  let running = null;
  const refresh = async () => {
    const r = await fetch(location.href, { credentials: "same-origin" });
    if (!r.ok) return;
    const fresh = new DOMParser().parseFromString(await r.text(), "text/html").querySelector("main");
    const main = document.querySelector("main");
    if (fresh && main) main.replaceWith(fresh);
  };
  const source = new EventSource("/api/events?live=1");
  source.addEventListener("live", (e) => {
    const live = JSON.parse(e.data);
    count.textContent = live.in_progress ? `· ${live.in_progress} live, ${live.players} playing` : "";
    const figures = { online: live.players + live.waiting, playing: live.players,
      waiting: live.waiting, matches: live.in_progress };
    for (const [key, value] of Object.entries(figures)) {
      for (const el of document.querySelectorAll(`[data-live-${key}]`)) el.textContent = value;
    }
    const ids = new Set(live.matches.map((m) => m.match_id));
    if (board && running && [...running].some((id) => !ids.has(id))) refresh();
    running = ids;
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) count.textContent = ""; };
  window.__liveNav = source;
})();
