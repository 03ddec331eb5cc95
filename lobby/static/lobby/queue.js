// The queue page with JavaScript: the lobby's event stream (/api/events) says when the
// match forms (then on to the game page), the place in the queue and the wait; without
// EventSource (or JavaScript) the page refreshes itself instead (its <noscript> meta).
(() => {
  const script = document.currentScript;
  const waited = document.getElementById("waited");
  const position = document.getElementById("position");
  if (!window.EventSource || !waited) {
    setTimeout(() => location.reload(), 2000);
    return;
  }
  let base = Number(waited.textContent) || 0;
  const began = Date.now();
  setInterval(() => { waited.textContent = (base + (Date.now() - began) / 1000).toFixed(0); }, 1000);
  const source = new EventSource("/api/events");
  const go = () => { source.close(); location.assign(script.dataset.game); };
  source.addEventListener("matched", go);
  source.addEventListener("state", (e) => {
    const b = JSON.parse(e.data);
    if (b.status === "matched") go();
    else if (b.status === "none") { source.close(); location.reload(); }
  });
  source.addEventListener("queue", (e) => {
    const b = JSON.parse(e.data);
    position.textContent = ` · #${b.position} in the queue` +
      (b.estimated_wait != null ? ` · match within ${b.estimated_wait} s` : ` · ${b.error || ""}`);
  });
  source.onerror = () => { if (source.readyState === EventSource.CLOSED) setTimeout(() => location.reload(), 2000); };
})();
