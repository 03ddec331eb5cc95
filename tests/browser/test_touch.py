"""`Arena.connect` with a seat token straight to the node (no lobby queue), played on a
touch screen: the virtual stick on the left half moves, a touch on the right half fires."""

from __future__ import annotations

import secrets
import time

import pytest

from engine.auth import issue_seat_token

from .conftest import SEAT_SECRET, save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(90)]


def touch(cdp, kind: str, points: list[tuple[float, float]]) -> None:
    cdp.send("Input.dispatchTouchEvent", {
        "type": kind, "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)]})


def test_touch_stick_moves_and_a_tap_fires(browser, servers):
    token = issue_seat_token(SEAT_SECRET, user_id=999, name="Touchy", match_id=secrets.token_hex(6),
                             node_id="browser-node", now=time.time(), mode="sprint", seats=1, bots=0)  # no one to end the match
    context = browser.new_context(viewport={"width": 900, "height": 600}, has_touch=True,
                                  is_mobile=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(servers.lobby_url + "/api/csrf")  # the page's origin: the lobby's
        page.set_content(
            f'<body style="margin:0;background:#000"><canvas id="arena"></canvas>'
            f'<script src="{servers.lobby_url}/static/client.js"></script>'
            f'<script>Arena.connect({{nodeUrl: "{servers.node_url}", token: "{token}"}})</script></body>')
        page.wait_for_function("window.__arena && window.__arena.state.predicted !== null",
                               timeout=20000)
        state = page.evaluate("window.__arena.state")
        me = next(p for p in state["players"] if p["id"] == state["playerId"])
        cdp = context.new_cdp_session(page)

        # the stick: touch down on the left half, drag 80 px right, hold
        touch(cdp, "touchStart", [(150, 400)])
        for dx in range(0, 81, 20):
            touch(cdp, "touchMove", [(150 + dx, 400)])
        time.sleep(0.6)

        def x_now() -> float:  # wire units (1/10 world unit)
            st = page.evaluate("window.__arena.state")
            return next(p for p in st["players"] if p["id"] == st["playerId"])["x"]

        moved = x_now() - me["x"]
        # a second finger on the right half aims and fires while the stick is held
        touch(cdp, "touchStart", [(230, 400), (800, 300)])
        fired = False
        deadline = time.monotonic() + 3
        while not fired and time.monotonic() < deadline:
            st = page.evaluate("window.__arena.state")
            fired = any(e["kind"] == "projectile" and e["owner"] == st["playerId"]
                        for e in st["entities"])
            time.sleep(0.05)
        touch(cdp, "touchEnd", [])
        time.sleep(0.3)
        state = page.evaluate("window.__arena.state")
        save_screenshot(page, "touch")
        assert moved > 400, f"the stick moved the player right ({moved / 10:+.1f} units)"
        assert fired, "a touch on the right half fired a shot"
        assert state["connected"] and not errors, errors
    finally:
        context.close()
