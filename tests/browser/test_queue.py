"""The lobby's game page opened directly by someone not signed in: the client signs in a
guest (CSRF token from /api/csrf), queues, shows the wait, and Esc leaves the queue."""

from __future__ import annotations

import pytest

from .conftest import save_screenshot

pytestmark = [pytest.mark.browser, pytest.mark.timeout(60)]

ME = "fetch('/api/me', {credentials: 'same-origin'}).then(r => r.json())"
QUEUE = "fetch('/api/queue', {credentials: 'same-origin'}).then(r => r.json())"


def test_game_page_signs_in_a_guest_queues_and_esc_leaves(browser, servers):
    context = browser.new_context(viewport={"width": 1000, "height": 700})
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        page.goto(servers.lobby_url + "/game/")
        page.wait_for_function("window.__arena && window.__arena.queue.queue === 'waiting'",
                               timeout=15000)
        me = page.evaluate(ME)
        assert me["guest"] is True and me["username"]
        assert page.evaluate(QUEUE)["status"] == "waiting"
        save_screenshot(page, "queue")

        page.keyboard.press("Escape")
        page.wait_for_function("window.__arena.queue.queue === 'cancelled'", timeout=10000)
        assert page.evaluate(QUEUE)["status"] == "none"
        assert page.locator(".arena-overlay").is_visible()
        assert not errors, errors
    finally:  # never leave a waiting ticket that another test's players could be matched with
        page.evaluate("window.__arena && window.__arena.queue.queue === 'waiting'"
                      " ? window.__arena.cancel() : null")
        context.close()
