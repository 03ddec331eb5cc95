"""Watching a finished match again, in a real browser (issue 14, Watch): two guests play a
short Arena match to its end; the node records it and ships the replay with the result;
the lobby verifies it and builds its frames file; a visitor whose browser has no
websockets at all opens the match page, clicks "Watch replay", and the replay page plays
it with the Arena's own module over plain HTTP: play, pause, speed, seek to the middle
and to the end, follow a player, share the moment; at the end the scoreboard is the
result stored on the match page. A frames file that fails to come, or comes damaged, is
said on the page.

The browser lobby is gunicorn (WSGI), which runs no background verifier: the test runs
`manage.py verify_replays` against its database, as a verifier process would.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys

import pytest

from lobby.live import REPO

from .conftest import ARTIFACTS, save_screenshot
from .test_play import NO_WEBSOCKET, Player, shoot_until_over, start_match, wait_until

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]

# The share of canvas pixels that are not the page's dark background: the module drew.
DRAWN_SHARE = """() => {
  const c = document.getElementById('replay-canvas');
  const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
  let lit = 0;
  for (let i = 0; i < d.length; i += 4 * 11) if (d[i] + d[i + 1] + d[i + 2] > 120) lit++;
  return lit / (d.length / (4 * 11));
}"""


def verify_replays(servers) -> str:
    proc = subprocess.run([sys.executable, "manage.py", "verify_replays"], cwd=REPO,
                          env={**os.environ, **servers.lobby_env}, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.strip()


def cells(row) -> list[str]:
    return [c.strip() for c in row.locator("td").all_inner_texts()]


def plain_name(text: str) -> str:
    """A player's name without the bot tag (the match page's `bot` badge, the replay's [bot])."""
    return re.sub(r"\s*(\[bot\]|bot)$", "", text.strip())


def stored_result(page) -> list[tuple]:
    """(place, name, score, *game columns) of the match page's table (its last column,
    Rating, is the lobby's own)."""
    rows = page.locator("table.board tbody tr")
    out = []
    for i in range(rows.count()):
        c = cells(rows.nth(i))
        out.append((c[0], plain_name(c[1]), *c[2:-1]))
    return out


def replay_board(page) -> list[tuple]:
    rows = page.locator("#replay-scoreboard tbody tr")
    out = []
    for i in range(rows.count()):
        c = cells(rows.nth(i))
        out.append((c[0], plain_name(c[1]), *c[2:]))
    return out


def state(page) -> dict:
    return page.evaluate("window.__replay.state")


def seek(page, tick: int) -> dict:
    page.locator("#replay-seek").fill(str(tick))
    wait_until(lambda: round(state(page)["tick"]) == tick, 5, f"the replay at tick {tick}",
               what_else=lambda: state(page)["tick"])
    return state(page)


def test_a_finished_match_is_watched_again_over_plain_http(browser, servers):
    a, b, sa, sb = start_match(browser, servers)
    ida, idb = sa["playerId"], sb["playerId"]
    match_id = sa["matchId"]
    try:
        shoot_until_over(a, b, idb, "replay")
        wait_until(lambda: a.state()["phase"] == "ended", 15, "the end of the match")
        live = a.state()
    finally:
        a.close()
        b.close()

    viewer = Player(browser, servers, websocket=NO_WEBSOCKET)
    sockets: list[str] = []
    viewer.page.on("websocket", lambda ws: sockets.append(ws.url))
    page = viewer.page
    try:
        match_url = f"{servers.lobby_url}/matches/{match_id}/"

        def watchable() -> bool:
            verify_replays(servers)
            page.goto(match_url)
            return page.locator("#watch-replay").count() == 1

        wait_until(watchable, 60, "the match page's Watch replay (result and replay in, verified)",
                   interval=0.5, what_else=lambda: page.inner_text("main"))
        assert page.locator(".replay-verdict").get_attribute("data-verdict") == "verified"
        stored = stored_result(page)
        assert len(stored) == len(live["results"]) == 2

        page.locator("#watch-replay").click()
        page.wait_for_url(re.compile(rf".*/matches/{re.escape(match_id)}/replay/$"))
        page.wait_for_function("window.__replay && window.__replay.loaded", timeout=20000)
        st = state(page)
        assert st["game"] == "arena" and st["matchId"] == match_id and st["error"] is None
        assert st["playing"], "the replay starts playing"
        assert {p["id"] for p in st["players"]} >= {ida, idb}
        first, last = st["first"], st["last"]
        wait_until(lambda: state(page)["tick"] > first + 10, 5, "the clock to run")
        wait_until(lambda: page.evaluate(DRAWN_SHARE) > 0.02, 5, "the Arena drawn on the canvas")

        # pause, then seek to the middle: the state and the scoreboard of that moment
        page.locator("#replay-play").click()
        wait_until(lambda: not state(page)["playing"], 5, "pause")
        # the middle of the span in which both players are in the match (the second joins
        # some seconds after the first on a loaded machine; a short match may end soon after)
        def both_in(st: dict) -> bool:
            return {e["id"] for e in st["entities"] if e["kind"] == "player"} >= {ida, idb}

        probes = [first + (last - first) * i // 10 for i in range(1, 10)]
        both_from = next((t for t in probes if both_in(seek(page, t))), last)
        middle = (both_from + last) // 2
        st = seek(page, middle)
        assert not st["playing"] and st["patchTick"] <= middle
        assert st["scoreboardTick"] <= middle and not st["final"]
        assert int(page.locator("#replay-scoreboard").get_attribute("data-tick")) == st["scoreboardTick"]
        assert both_in(st)

        # follow the winner; the share link opens this moment, following them
        page.locator("#replay-follow").select_option(str(ida))
        wait_until(lambda: state(page)["follow"] == ida, 5, "following the winner")
        assert page.locator(f"#replay-scoreboard tr.followed[data-player='{ida}']").count() == 1
        save_screenshot(page, "replay-middle")
        page.locator("#replay-share").click()
        link = page.locator("#replay-share-link").input_value()
        assert link.endswith(f"/matches/{match_id}/replay/?t={middle}&p={ida}"), link

        # on to the end: the final scoreboard is the result stored on the match page
        st = seek(page, last)
        assert st["phase"] == "ended" and st["final"] and st["endReason"] == "score"
        wait_until(lambda: page.locator("#replay-scoreboard").get_attribute("data-final") == "true",
                   5, "the final scoreboard")
        assert replay_board(page) == stored, (replay_board(page), stored)
        heads = [h.strip().lower() for h in page.locator("#replay-scoreboard th").all_inner_texts()]
        assert heads == ["#", "player", "score", "kills", "deaths"], heads
        save_screenshot(page, "replay-end")

        # speed 8x from the middle plays on to the end by itself
        seek(page, middle)
        page.locator("#replay-speed").select_option("8")
        page.locator("#replay-play").click()
        wait_until(lambda: state(page)["speed"] == 8 and state(page)["phase"] == "ended", 20,
                   "8x to the end", what_else=lambda: {k: state(page)[k] for k in ("tick", "speed", "playing")})

        # the shared link, opened in another visitor's browser, is that moment
        other = Player(browser, servers, websocket=NO_WEBSOCKET)
        try:
            other.page.goto(link)
            other.page.wait_for_function("window.__replay && window.__replay.loaded", timeout=20000)
            shared = state(other.page)
            assert round(shared["tick"]) == middle and shared["follow"] == ida and not shared["playing"]
            assert not other.errors, other.errors
        finally:
            other.close()

        # a frames file that does not come, or comes damaged, is said on the page
        for status, body, said in ((404, b"{}", "no replay to watch"),
                                   (200, b"\x78\x9c not zlib at all", "cannot be played")):
            broken = Player(browser, servers)
            try:
                broken.context.route(re.compile(r".*/replay\.frames$"), functools.partial(
                    lambda s, b, route: route.fulfill(status=s, body=b), status, body))
                broken.page.goto(link)
                broken.page.wait_for_function("window.__replay && window.__replay.state.phase === 'error'",
                                              timeout=20000)
                assert said in broken.page.locator("#replay-status").inner_text()
                assert not broken.errors, broken.errors
            finally:
                broken.close()

        st = state(page)
        figures = {k: st["stats"][k] for k in ("seeks", "seekMs", "maxSeekMs", "fps", "frameMs")}
        figures.update(ticks=last - first, frames_url=f"/matches/{match_id}/replay.frames")
        (ARTIFACTS / "figures-replay.json").write_text(json.dumps(figures, indent=1))
        print(f"\nreplay: {figures}")
        assert not sockets, f"the replay page opened websockets: {sockets}"
        assert not viewer.errors, viewer.errors
    finally:
        viewer.close()
