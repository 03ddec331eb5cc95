"""Tag, the second game, end to end in a real browser: two visitors open the lobby's game
page for the tag duel mode (the client signs each in as a guest and queues them in that
mode), the lobby matches them on the node, the shell loads Tag's browser module by the
name in the welcome and draws its field, their inputs are acked and move their runners,
the match ends on time, and the end screen and the lobby's match page show Tag's result
columns. Also: a game module that cannot be loaded is said on screen.

The node runs the tag duel with a 15 s time limit (conftest.MODE_OVERRIDES).
"""

from __future__ import annotations

import re

import pytest

from .conftest import TAG_MODE, save_screenshot
from .test_play import Player, record_figures, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

# The share of canvas pixels in Tag's field green (#15301f, stripes a shade lighter): the
# Arena's floor is navy, a message screen dark blue; only Tag's module draws this.
FIELD_SHARE = """() => {
  const c = document.getElementById('arena');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let field = 0;
  for (let i = 0; i < d.length; i += 4 * 7) {
    if (d[i + 1] > d[i] + 15 && d[i + 1] > d[i + 2] + 8 && d[i + 1] < 90) field++;
  }
  return field / (d.length / (4 * 7));
}"""


def open_tag(player: Player) -> None:
    player.page.goto(f"{player.servers.lobby_url}/game/?mode={TAG_MODE}")


def wait_playing(player: Player, timeout: float = 40) -> dict:
    player.page.wait_for_function(
        "window.__arena && window.__arena.state.phase === 'playing'"
        " && window.__arena.state.predicted !== null", timeout=timeout * 1000)
    return player.state()


def own(state: dict) -> dict:
    return next(p for p in state["players"] if p["id"] == state["playerId"])


def test_two_guests_play_tag_to_the_end(browser, servers):
    a, b = Player(browser, servers), Player(browser, servers)
    try:
        open_tag(a)
        open_tag(b)
        sa, sb = wait_playing(a), wait_playing(b)
        assert sa["game"] == "tag" and sb["game"] == "tag"
        assert sa["matchId"] == sb["matchId"], "both guests are in one room"
        assert sa["resultColumns"] == ["Tags", "Caught"]
        assert {p["id"] for p in sa["players"]} == {sa["playerId"], sb["playerId"]}
        assert all(p["kind"] == "runner" for p in sa["entities"])

        # the canvas shows Tag's field, drawn by its module
        wait_until(lambda: a.page.evaluate(FIELD_SHARE) > 0.3, 5, "Tag's field on the canvas")
        save_screenshot(a.page, "tag-playing")

        # inputs go out, are acked by the node, and move the runner (the other sees it)
        half = 2000  # Tag's field is 4000 wide (its wire units are world units)
        for mover, watcher in ((a, b), (b, a)):
            pid = mover.state()["playerId"]
            x0 = next(p for p in watcher.state()["players"] if p["id"] == pid)["x"]
            ack0 = mover.state()["ack"]
            way = 1 if x0 < half else -1  # towards the middle: never into the border
            mover.hold("d" if way > 0 else "a", 0.6)
            wait_until(lambda m=mover, a0=ack0: m.state()["ack"] > a0 and m.state()["ack"] == m.state()["seq"],
                       5, "the node to ack the inputs",
                       what_else=lambda m=mover: {k: m.state()[k] for k in ("ack", "seq", "link")})
            wait_until(lambda w=watcher, p=pid, x=x0, d=way:
                       (next(q for q in w.state()["players"] if q["id"] == p)["x"] - x) * d > 150,
                       5, f"runner {pid} seen moving")
        st = a.state()
        assert own(st)["ack"] == st["ack"], "the own ack is the own runner's ack field"

        # the match ends on time; both see Tag's result columns
        for p in (a, b):
            wait_until(lambda p=p: p.state()["phase"] == "ended", 30, "the end of the tag match",
                       what_else=lambda p=p: {k: p.state()[k] for k in ("phase", "clock", "error", "link")})
        ra, rb = a.state(), b.state()
        record_figures("tag", ra, rb)
        assert ra["endReason"] == "time"
        assert ra["results"] == rb["results"] and len(ra["results"]) == 2
        for row in ra["results"]:
            assert set(row["stats"]) == {"tags", "caught"}
        assert sum(r["stats"]["tags"] for r in ra["results"]) == sum(
            r["stats"]["caught"] for r in ra["results"])
        overlay = a.page.locator(".arena-overlay")
        head = overlay.locator("table.arena-results tr").first.inner_text().split("\t")
        assert [h.strip() for h in head] == ["#", "Player", "Score", "Tags", "Caught"]
        save_screenshot(a.page, "tag-end")

        # the lobby's match page, from the end screen's link, shows Tag's columns too
        a.page.locator("a.arena-match-link").click()
        a.page.wait_for_url(re.compile(rf".*/matches/{re.escape(ra['matchId'])}/$"))

        def finished() -> bool:
            a.page.reload()
            return "finished" in a.page.content()

        wait_until(finished, 20, "the match page to show the node's result", interval=0.5)
        heads = [h.strip().lower() for h in a.page.locator("table thead th").all_inner_texts()]
        assert "tags" in heads and "caught" in heads, heads  # (css may upper-case them)
        text = a.page.inner_text("body")
        for row in ra["results"]:
            assert row["name"] in text
        assert not a.errors and not b.errors, a.errors + b.errors
    finally:
        a.close()
        b.close()


def test_a_game_module_that_does_not_load_is_said_on_screen(browser, servers):
    """The node names a game whose module the page cannot get (here: Tag's, refused by the
    network): a clear message, never a silently broken screen."""
    p = Player(browser, servers)
    q = Player(browser, servers)
    try:
        for player in (p, q):
            player.context.route(re.compile(r".*/static/games/tag\.js(\?.*)?$"),
                                 lambda route: route.abort())
            open_tag(player)
        for player in (p, q):
            wait_until(lambda pl=player: pl.state()["phase"] == "error", 40,
                       "the error screen", what_else=lambda pl=player: pl.state()["phase"])
        st = p.state()
        assert st["game"] == "tag"
        assert 'The game "tag" could not be loaded' in st["error"]["reason"]
        assert "could not be loaded" in p.page.locator(".arena-overlay").inner_text()
        save_screenshot(p.page, "tag-module-missing")
    finally:  # the two seats' match ends on its own time limit
        p.close()
        q.close()
