"""A deploy in a real browser: two guests play on one node, that node gets SIGTERM, the
match moves to the other node (docs/scale-out.md, "Handoff") and both pages go on playing
there without a reload: same seat, the game's tick going on, prediction on, the node URL
changed. Its own lobby and two nodes (the session's servers have one)."""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Iterator

import pytest

from loadtest.procs import stop
from lobby.live import GunicornServer

from .conftest import (
    ARTIFACTS,
    GAME_OVERRIDES,
    lobby_env,
    save_screenshot,
    start_test_node,
)
from .test_play import Player

pytestmark = [pytest.mark.browser, pytest.mark.timeout(180)]


class Cluster:
    def __init__(self, lobby_url: str, nodes: dict[str, tuple[subprocess.Popen, str]]):
        self.lobby_url = lobby_url
        self.nodes = nodes


@pytest.fixture(scope="module")
def two_nodes(servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """`servers` only for its checks (Chromium, the built client)."""
    tmp = tmp_path_factory.mktemp("handoff")
    env = lobby_env(tmp, MATCHER_INTERVAL="0")
    lobby = GunicornServer(workers=1, threads=8, env=env, log_path=ARTIFACTS / "handoff-lobby.log")
    lobby.start()
    nodes: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for node_id in ("node-a", "node-b"):
            nodes[node_id] = start_test_node(
                lobby.url, tmp, node_id, ARTIFACTS / f"handoff-{node_id}.log",
                overrides={**GAME_OVERRIDES, "score_limit": 50},
                ARENA_RECONNECT_WINDOW="20", ARENA_DRAIN_GRACE="5")
        yield Cluster(lobby.url, nodes)
    finally:
        for proc, _ in nodes.values():
            stop(proc)
        lobby.stop()


def test_the_game_goes_on_across_a_node_restart(browser, two_nodes):
    lobby = type("S", (), {"lobby_url": two_nodes.lobby_url})()
    a, b = Player(browser, lobby), Player(browser, lobby)
    try:
        for p in (a, b):
            p.play_as_guest()
        before = [p.wait_playing() for p in (a, b)]
        for p in (a, b):
            p.page.evaluate("window.__notReloaded = true")
        url = before[0]["nodeUrl"]
        assert before[1]["nodeUrl"] == url
        source = next(n for n, (_, u) in two_nodes.nodes.items() if u == url)
        target_url = next(u for n, (_, u) in two_nodes.nodes.items() if n != source)
        a.hold("d", 0.3)
        ticks = [s["tick"] for s in (a.state(), b.state())]

        moved_at = time.monotonic()
        two_nodes.nodes[source][0].send_signal(signal.SIGTERM)
        for p in (a, b):
            p.page.wait_for_function(
                "s => window.__arena.state.moves === 1 && window.__arena.state.connected"
                " && window.__arena.state.nodeUrl === s", arg=target_url, timeout=20_000)
        gap = time.monotonic() - moved_at
        for p, tick0, s0 in zip((a, b), ticks, before, strict=True):
            p.page.wait_for_function(f"window.__arena.state.tick > {tick0 + 30}", timeout=10_000)
            s = p.state()
            assert p.page.evaluate("window.__notReloaded") is True, "no reload"
            assert (s["playerId"], s["matchId"], s["phase"]) == (s0["playerId"], s0["matchId"],
                                                                 "playing")
            assert s["predicted"] is not None and s["error"] in (None, "")
            assert any("reconnecting" in h for h in s["linkHistory"])
            assert not p.errors, p.errors
        me = a.player(before[0]["playerId"])
        x0 = me["x"]
        a.hold("d", 0.5)  # inputs reach the new node: the player moves there
        a.page.wait_for_function(
            f"window.__arena.state.players.find(p => p.id === {before[0]['playerId']}).x !== {x0}",
            timeout=5_000)
        save_screenshot(a.page, "handoff-after-move")
        print(f"SIGTERM to both pages playing on the new node: {gap:.2f} s")
    finally:
        for p in (a, b):
            p.context.close()

