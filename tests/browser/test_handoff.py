"""A deploy in a real browser: two guests play on one node, that node gets SIGTERM, the
match moves to the other node (docs/scale-out.md, "Handoff") and both pages go on playing
there without a reload: same seat, the game's tick going on, prediction on, the node URL
changed. Its own lobby and two nodes (the session's servers have one)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from loadtest.procs import start_node, stop
from lobby.live import REPO, GunicornServer

from .conftest import (
    ARTIFACTS,
    GAME_OVERRIDES,
    MODE_OVERRIDES,
    NODE_SECRET,
    SEAT_SECRET,
    save_screenshot,
    wait_registered,
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
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'lobby.sqlite3'}", "DB_CONN_MAX_AGE": "0",
        "MATCH_MODE": "sprint", "MATCH_MODES": "sprint", "MATCH_SIZE": "2",
        "MATCH_MAX_WAIT": "120", "MATCHER_INTERVAL": "0",
        "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env={**os.environ, **env}, check=True, timeout=120)
    lobby = GunicornServer(workers=1, threads=8, env=env, log_path=ARTIFACTS / "handoff-lobby.log")
    lobby.start()
    nodes: dict[str, tuple[subprocess.Popen, str]] = {}
    try:
        for node_id in ("node-a", "node-b"):
            log = ARTIFACTS / f"handoff-{node_id}.log"
            log.write_bytes(b"")
            proc, port = start_node(
                lambda port, node_id=node_id: [
                    sys.executable, "-m", "tests.browser.node_runner", "--port", str(port),
                    "--node-id", node_id, "--lobby-url", lobby.url,
                    "--outbox", str(tmp / f"outbox-{node_id}.sqlite3"),
                    "--overrides", json.dumps({**GAME_OVERRIDES, "score_limit": 50}),
                    "--mode-overrides", json.dumps(MODE_OVERRIDES)],
                node_id, log_path=log, cwd=REPO, what=node_id,
                env={**os.environ, "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
                     "ARENA_HEARTBEAT_INTERVAL": "0.5", "ARENA_RECONNECT_WINDOW": "20",
                     "ARENA_DRAIN_GRACE": "5"})
            nodes[node_id] = (proc, f"http://127.0.0.1:{port}")
            wait_registered(tmp / "lobby.sqlite3", node_id)
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

