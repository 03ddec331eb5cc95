// "Live now": keeps the list of matches in progress current from the event stream
// (/api/events?live=1, Server-Sent Events); without JavaScript the page refreshes itself.
(() => {
  const body = document.querySelector("#live-matches tbody");
  if (!body || !window.EventSource) return;
  const signedIn = body.closest("table").dataset.signedIn === "1";
  const text = (tag, value, cls) => {
    const el = document.createElement(tag);
    el.textContent = value;
    if (cls) el.className = cls;
    return el;
  };
  // time left: counted down here from the node's last report (`ends`), "–" before it
  const tick = () => {
    for (const el of body.querySelectorAll(".left")) {
      el.textContent = el.dataset.ends
        ? `${Math.max(0, Math.round(Number(el.dataset.ends) - Date.now() / 1000))} s` : "–";
    }
  };
  const show = (live) => {
    document.getElementById("live-count").textContent = live.in_progress;
    document.getElementById("live-players").textContent = live.players;
    document.getElementById("live-waiting").textContent = live.waiting;
    body.replaceChildren();
    if (!live.matches.length) {
      const row = document.createElement("tr");
      row.className = "empty";
      const cell = text("td", "No match in progress.");
      cell.colSpan = 6;
      row.append(cell);
      body.append(row);
    }
    for (const m of live.matches) {
      const row = document.createElement("tr");
      row.dataset.match = m.match_id;
      const left = text("td", "", "left");
      left.dataset.started = m.started;
      if (m.ends) left.dataset.ends = m.ends;
      const score = text("td", (m.top || []).map(([name, points]) => `${name} ${points}`).join(", "), "score");
      const players = m.players.join(", ") + (m.bots ? ` + ${m.bots} bots` : "");
      const action = document.createElement("td");
      if (signedIn) {
        const a = text("a", "Spectate", "btn alt spectate");
        a.href = `/live/${encodeURIComponent(m.match_id)}/spectate/`;
        action.append(a);
      }
      row.append(text("td", m.game), text("td", m.mode), text("td", players), score, left, action);
      body.append(row);
    }
    tick();
  };
  const source = new EventSource("/api/events?live=1");
  source.addEventListener("live", (e) => show(JSON.parse(e.data)));
  window.__live = source;
  setInterval(tick, 1000);
})();
