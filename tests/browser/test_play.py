"""End to end in a real browser: two guests click "Play as guest", get matched into one
room, see each other move, one shoots the other, the match ends, and the lobby's match
page and leaderboard show the result. Once over the binary raw websocket (with a dropped
connection that resumes its seat), once with websockets blocked so that sockjs-client
falls back to xhr-streaming and, where streaming is blocked too, xhr-polling.

The game node runs with a short match (first kill wins) and spawn points in sight of each
other: see conftest.GAME_OVERRIDES. Positions in `window.__arena.state` are wire units
(1/10 of an Arena world unit).
"""

from __future__ import annotations

import json
import re
import time

import pytest

from .conftest import ARTIFACTS, publish_screenshot, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(150)]

# Two ways websockets fail: a proxy that refuses the upgrade (every socket errors before it
# opens), and a browser without WebSocket at all.
FAILING_WEBSOCKET = """
window.WebSocket = class {
  constructor(url) {
    this.url = url; this.readyState = 0;
    setTimeout(() => {
      this.readyState = 3;
      if (this.onerror) this.onerror(new Event("error"));
      if (this.onclose) this.onclose({code: 1006, reason: "", wasClean: false});
    }, 30);
  }
  send() { throw new Error("not open"); }
  close() {}
};
window.WebSocket.CONNECTING = 0; window.WebSocket.OPEN = 1;
window.WebSocket.CLOSING = 2; window.WebSocket.CLOSED = 3;
"""
NO_WEBSOCKET = "Object.defineProperty(window, 'WebSocket', {value: undefined});"
BLOCK_STREAMING = re.compile(r".*/xhr_streaming(\?.*)?$")


class Player:
    """One browser context (its own cookies: its own guest) on the lobby."""

    def __init__(self, browser, servers, *, websocket: str = "", block_streaming: bool = False
                 ) -> None:
        self.servers = servers
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        if websocket:
            self.context.add_init_script(websocket)
        if block_streaming:
            self.context.route(BLOCK_STREAMING, lambda route: route.abort())
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))

    def play_as_guest(self) -> None:
        self.page.goto(self.servers.lobby_url + "/")
        self.page.get_by_role("button", name=re.compile("play as guest", re.I)).click()
        self.page.wait_for_url(re.compile(r".*/(queue|game)/$"))

    def wait_playing(self, timeout: float = 40) -> dict:
        self.page.wait_for_url(re.compile(r".*/game/$"), timeout=timeout * 1000)
        self.page.wait_for_function(
            "window.__arena && window.__arena.state.phase === 'playing'"
            " && window.__arena.state.predicted !== null", timeout=timeout * 1000)
        return self.state()

    def state(self) -> dict:
        return self.page.evaluate("window.__arena.state")

    def player(self, pid: int) -> dict | None:
        return next((p for p in self.state()["players"] if p["id"] == pid), None)

    def hold(self, key: str, seconds: float) -> None:
        self.page.keyboard.down(key)
        time.sleep(seconds)
        self.page.keyboard.up(key)

    def aim_at(self, x: float, y: float) -> None:
        """Point the mouse at a position given in wire units (as the state has them)."""
        pt = self.page.evaluate("([x, y]) => window.__arena.screenOf(x, y)", [x, y])
        self.page.mouse.move(pt["x"], pt["y"])

    def close(self) -> None:
        self.context.close()


def wait_until(predicate, timeout: float, what: str, interval: float = 0.1, what_else=None):
    """Poll `predicate` until it is truthy; on a timeout, say what `what_else()` saw."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    seen = f": {what_else()}" if what_else else ""
    raise AssertionError(f"timed out after {timeout} s waiting for {what}{seen}")


def start_match(browser, servers, **kw) -> tuple[Player, Player, dict, dict]:
    a, b = Player(browser, servers, **kw.get("a", {})), Player(browser, servers, **kw.get("b", {}))
    a.play_as_guest()
    b.play_as_guest()
    sa, sb = a.wait_playing(), b.wait_playing()
    assert sa["matchId"] == sb["matchId"], "both guests are in one room"
    assert sa["playerId"] != sb["playerId"] and sa["playerId"] > 0 and sb["playerId"] > 0
    return a, b, sa, sb


def see_each_other_move(a: Player, b: Player, ida: int, idb: int, back: bool = False) -> None:
    """Each player takes a step (a down and b up, or with `back` the other way) and the
    other one sees it. Alternating calls keep both clear of walls."""
    down = -1 if back else 1
    for mover, watcher, pid, dy in ((a, b, ida, down), (b, a, idb, -down)):
        before = watcher.player(pid)["y"]
        mover.hold("s" if dy > 0 else "w", 0.3)
        wait_until(lambda w=watcher, p=pid, y0=before, d=dy: (w.player(p)["y"] - y0) * d > 300,
                   5, f"player {pid} seen moving")


def shoot_until_over(shooter: Player, target: Player, target_id: int, tag: str,
                     timeout: float = 40) -> int:
    """Aim at the target and hold fire until the match ends; returns the target's lowest hp."""
    lowest = 100
    shooter.page.mouse.move(10, 10)
    pos = shooter.player(target_id)
    shooter.aim_at(pos["x"], pos["y"])
    shooter.page.mouse.down()
    deadline = time.monotonic() + timeout
    shot = False
    try:
        while time.monotonic() < deadline:
            st = shooter.state()
            if st["phase"] == "ended":
                break
            me = target.state()
            own = next((p for p in me["players"] if p["id"] == target_id), None)
            if own:
                lowest = min(lowest, own["hp"])
                if not shot and 0 < own["hp"] < 100:
                    path = save_screenshot(shooter.page, f"fight-{tag}")  # hit, still up
                    if tag == "websocket":
                        publish_screenshot(path)
                    shot = True
            pos = next((p for p in st["players"] if p["id"] == target_id), None)
            if pos:
                shooter.aim_at(pos["x"], pos["y"])
            time.sleep(0.1)
    finally:
        shooter.page.mouse.up()
    return lowest


def record_figures(tag: str, *states: dict) -> None:
    """What each client measured (printed and kept as an artifact; never asserted)."""
    keys = ("transport", "rtt", "reconnects")
    figures = [{**{k: st[k] for k in keys}, **st["stats"]} for st in states]
    (ARTIFACTS / f"figures-{tag}.json").write_text(json.dumps(figures, indent=1))
    print(f"\n{tag}: " + "; ".join(
        f"{f['transport']} rtt {f['rtt']} ms, {f['fps']} fps, frame {f['frameMs']} ms, "
        f"{f['patches']} patches, {f['inputsSent']} inputs, {f['corrections']} corrections"
        for f in figures))


def check_end_and_lobby(a: Player, b: Player, ida: int, idb: int, tag: str) -> None:
    for p in (a, b):
        wait_until(lambda p=p: p.state()["phase"] == "ended", 15,
                   "the end screen", what_else=lambda p=p: {
                       k: p.state()[k] for k in ("phase", "error", "link", "linkHistory", "results")})
    ra, rb = a.state(), b.state()
    assert ra["results"] == rb["results"]
    record_figures(tag, ra, rb)
    rows = {r["playerId"]: r for r in ra["results"]}
    assert ra["endReason"] == "score"
    assert rows[ida]["placement"] == 1 and rows[ida]["stats"]["kills"] >= 1
    assert rows[idb]["stats"]["deaths"] >= 1
    assert ra["game"] == "arena" and ra["resultColumns"] == ["Kills", "Deaths"]
    overlay = a.page.locator(".arena-overlay")
    assert "Victory" in overlay.inner_text()
    head = overlay.locator("table.arena-results tr").first.inner_text().split("\t")
    assert [h.strip() for h in head] == ["#", "Player", "Score", "Kills", "Deaths"]
    save_screenshot(a.page, f"end-{tag}")
    save_screenshot(b.page, f"end-{tag}-loser")

    # the match page in the lobby, reached from the end screen's link
    a.page.locator("a.arena-match-link").click()
    a.page.wait_for_url(re.compile(rf".*/matches/{re.escape(ra['matchId'])}/$"))

    def finished() -> bool:
        a.page.reload()
        return "finished" in a.page.content()

    wait_until(finished, 20, "the match page to show the node's result", interval=0.5)
    text = a.page.inner_text("main") if a.page.locator("main").count() else a.page.inner_text("body")
    winner, loser = rows[ida]["name"], rows[idb]["name"]
    assert winner in text and loser in text
    save_screenshot(a.page, f"match-page-{tag}")

    b.page.goto(b.servers.lobby_url + "/leaderboard/")
    board = b.page.inner_text("body")
    assert winner in board and loser in board


def test_two_guests_play_over_websocket_and_a_dropped_player_resumes(browser, servers):
    """Also: a reload of the game page mid-match gets the same seat back."""
    a, b, sa, sb = start_match(browser, servers)
    ida, idb = sa["playerId"], sb["playerId"]
    try:
        assert sa["transport"] == "websocket" and sb["transport"] == "websocket"
        see_each_other_move(a, b, ida, idb)
        save_screenshot(b.page, "playing-websocket")

        # a drop: the socket closes without `leave`; the client resumes the same seat
        b.page.evaluate("window.__arena.drop()")
        wait_until(lambda: b.state()["reconnects"] >= 1 and b.state()["connected"], 15,
                   "the dropped player to resume")
        after = b.state()
        assert after["playerId"] == idb and after["matchId"] == sb["matchId"]
        tick = after["tick"]
        wait_until(lambda: b.state()["tick"] > tick + 10, 5, "patches after the resume")
        see_each_other_move(a, b, ida, idb, back=True)

        # a reload: the game page gets a fresh seat token from the lobby, for the same seat
        b.page.reload()
        again = b.wait_playing()
        assert (again["playerId"], again["matchId"]) == (idb, sb["matchId"])
        see_each_other_move(a, b, ida, idb)

        lowest = shoot_until_over(a, b, idb, "websocket")
        assert lowest < 100, "the target was hit"
        check_end_and_lobby(a, b, ida, idb, "websocket")
        assert not a.errors and not b.errors, a.errors + b.errors
    finally:
        a.close()
        b.close()


SOCKJS_SESSION = re.compile(r"/play/[^/]+/([^/]+)/xhr")


def test_websockets_blocked_fall_back_to_xhr_streaming_and_polling(browser, servers):
    sessions: set[str] = set()

    def watch(p: Player) -> None:
        def seen(request) -> None:
            m = SOCKJS_SESSION.search(request.url)
            if m:
                sessions.add(m.group(1))
        p.page.on("request", seen)

    a, b = (Player(browser, servers, websocket=FAILING_WEBSOCKET),
            Player(browser, servers, websocket=NO_WEBSOCKET, block_streaming=True))
    watch(a)
    watch(b)
    a.play_as_guest()
    b.play_as_guest()
    sa, sb = a.wait_playing(), b.wait_playing()
    assert sa["matchId"] == sb["matchId"]
    ida, idb = sa["playerId"], sb["playerId"]
    try:
        # issue 11: a session id is a bearer secret: 128 random bits, 32 hex digits
        assert len(sessions) >= 2, sessions
        assert all(re.fullmatch(r"[0-9a-f]{32}", sid) for sid in sessions), sessions
        assert sa["transport"] == "sockjs/xhr-streaming", sa["transport"]
        assert sb["transport"] == "sockjs/xhr-polling", sb["transport"]
        see_each_other_move(a, b, ida, idb)
        save_screenshot(b.page, "playing-xhr-polling")

        # the network goes away for a moment: the polling client resumes its seat
        b.context.set_offline(True)
        time.sleep(1.0)
        b.context.set_offline(False)
        wait_until(lambda: b.state()["connected"] and b.state()["reconnects"] >= 1, 20,
                   "the polling client to resume")
        assert b.state()["playerId"] == idb
        see_each_other_move(a, b, ida, idb, back=True)

        lowest = shoot_until_over(a, b, idb, "sockjs")
        assert lowest < 100, "the target was hit"
        check_end_and_lobby(a, b, ida, idb, "sockjs")
        assert not a.errors and not b.errors, a.errors + b.errors
    finally:
        a.close()
        b.close()
