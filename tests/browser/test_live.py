"""The live lobby in Chromium, on a uvicorn lobby: two guests queue from the home page and
enter their match with no GET /api/queue request (the queue page and the client follow
the event stream); a third browser, on Live now, sees the match appear with its score and
time left, spectates it and follows a player, and the home page counts the match."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from loadtest.procs import stop
from lobby.realtime.server import UvicornServer

from .conftest import (
    ARTIFACTS,
    NODE_ID,
    Servers,
    lobby_env,
    save_screenshot,
    start_test_node,
)

pytestmark = [pytest.mark.browser, pytest.mark.timeout(120)]

SIGN_IN = """async () => {
  await fetch('/api/csrf', {credentials: 'same-origin'});
  const csrf = document.cookie.split('; ').find(c => c.startsWith('csrftoken=')).split('=')[1];
  const r = await fetch('/api/guest', {method: 'POST', credentials: 'same-origin',
                                       headers: {'X-CSRFToken': csrf}});
  return r.status;
}"""


@pytest.fixture(scope="module")
def live_servers(browser, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    tmp = tmp_path_factory.mktemp("live")
    env = lobby_env(tmp, REDIS_URL="", MATCHER_TASK="1")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    lobby_log, node_log = ARTIFACTS / "live-lobby.log", ARTIFACTS / "live-node.log"
    lobby = UvicornServer(env=env, log_path=lobby_log).start()
    try:
        node, node_url = start_test_node(lobby.url, tmp, NODE_ID, node_log)
    except BaseException:
        lobby.stop()
        raise
    try:
        yield Servers(lobby.url, node_url, node_log, lobby_log, env)
    finally:
        stop(node)
        lobby.stop()


def test_queue_by_stream_then_spectate_from_live_now(browser, live_servers) -> None:
    url = live_servers.lobby_url
    contexts = [browser.new_context(viewport={"width": 1000, "height": 700}) for _ in range(3)]
    a, b, c = (ctx.new_page() for ctx in contexts)
    polls: list[str] = []
    errors: list[str] = []
    for page in (a, b, c):
        page.on("request", lambda r: polls.append(r.url)
                if r.method == "GET" and r.url.split("?")[0].endswith("/api/queue") else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
    try:
        # the spectator-to-be: signed in (a guest), on Live now, nothing in progress yet
        c.goto(url + "/live/")
        assert c.evaluate(SIGN_IN) == 200
        c.goto(url + "/live/")
        c.wait_for_function("window.__live && window.__live.readyState === 1", timeout=10000)
        assert c.locator("#live-matches tr[data-match]").count() == 0

        for page in (a, b):  # Play as guest: the queue page, then the game on `matched`
            page.goto(url + "/")
            page.get_by_role("button", name=re.compile("play as guest", re.I)).click()
        for page in (a, b):
            page.wait_for_url(re.compile(r".*/game/$"), timeout=30000)
            page.wait_for_function("window.__arena && window.__arena.state.phase === 'playing'",
                                   timeout=30000)
        ids = [page.evaluate("window.__arena.state.matchId") for page in (a, b)]
        assert ids[0] == ids[1]
        assert [page.evaluate("window.__arena.queue.transport") for page in (a, b)] == ["events"] * 2

        # Live now lists it (pushed: the page was not reloaded), Spectate seats a spectator
        row = c.locator(f"#live-matches tr[data-match='{ids[0]}']")
        row.wait_for(timeout=10000)
        assert "sprint" in row.inner_text()
        # the node's heartbeats bring the leading scores and the time left
        c.wait_for_function(f"""(() => {{
          const row = document.querySelector("#live-matches tr[data-match='{ids[0]}']");
          return row && row.querySelector('.score').textContent.trim() !== ''
            && /^\\d+ s$/.test(row.querySelector('.left').textContent);
        }})()""", timeout=10000)
        row.get_by_role("link", name="Spectate").click()
        c.wait_for_url(re.compile(r".*/spectate/$"))
        c.wait_for_function("window.__arena && window.__arena.state.phase === 'playing'",
                            timeout=20000)
        assert c.evaluate("window.__arena.playerId") == 0  # a spectator
        assert c.evaluate("window.__arena.state.matchId") == ids[0]
        # a spectator follows any player: the picker lists the players of the state
        players = {page.evaluate("window.__arena.playerId") for page in (a, b)}
        pick = c.locator("select.arena-follow")
        pick.wait_for(timeout=10000)
        c.wait_for_function("document.querySelectorAll('select.arena-follow option').length >= 3",
                            timeout=10000)
        chosen = int(pick.locator("option").nth(2).get_attribute("value"))
        assert chosen in players
        pick.select_option(str(chosen))
        c.wait_for_function(f"window.__arena.state.following === {chosen}", timeout=5000)
        assert c.evaluate("window.__arena.playerId") == 0  # still a spectator
        save_screenshot(c, "spectate")
        # any other lobby page: the top bar counts it (pushed over the stream's `live`)
        c.goto(url + "/")
        c.wait_for_function("document.querySelector('[data-live-count]').textContent"
                            ".includes('1 live, 2 playing')", timeout=10000)
        # the home page's own figures: players online and matches in progress
        c.wait_for_function("document.querySelector('[data-live-matches]').textContent === '1'"
                            " && document.querySelector('[data-live-online]').textContent === '2'",
                            timeout=10000)
        # pushed: a fourth guest queues, the open home page counts one more online
        d = browser.new_context().new_page()
        d.goto(url + "/")
        d.get_by_role("button", name=re.compile("play as guest", re.I)).click()
        d.wait_for_url(re.compile(r".*/queue/$"), timeout=10000)
        c.wait_for_function("document.querySelector('[data-live-online]').textContent === '3'"
                            " && document.querySelector('[data-live-waiting]').textContent === '1'",
                            timeout=10000)
        d.context.close()
        assert polls == [], f"queue polled: {polls}"
        assert not errors, errors
    finally:
        for ctx in contexts:
            ctx.close()
