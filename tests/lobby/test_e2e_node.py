"""The whole loop over HTTP with a live game node: guest sign-in, queue, matched, seat
token accepted by the node, match played to its end, result posted by the node's
outbox, rating, history and leaderboards updated."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import aiohttp
import pytest
from django.conf import settings
from django.db import connection

from engine import codec
from loadtest.procs import start_node, stop
from lobby.live import REPO, GunicornServer, Session, database_url

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def lobby_and_node(transactional_db, tmp_path):
    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "MATCHER_INTERVAL": "0", "MATCH_MAX_WAIT": "1", "MATCH_SIZE": "4",
           "NODE_SECRET": settings.NODE_SECRET, "SEAT_SECRET": settings.SEAT_SECRET}
    with GunicornServer(workers=2, env=env) as lobby:
        node, port = start_node(
            lambda port: [sys.executable, "-m", "game_server", "--host", "127.0.0.1",
                          "--port", str(port), "--node-id", "e2e-node", "--lobby-url", lobby.url,
                          "--outbox", str(tmp_path / "outbox.sqlite3"), "--log-level", "WARNING"],
            "e2e-node", log_path=tmp_path / "node.log", cwd=REPO,
            env={**os.environ, "ARENA_TIME_SCALE": "10", "ARENA_HEARTBEAT_INTERVAL": "0.5",
                 "NODE_SECRET": settings.NODE_SECRET, "SEAT_SECRET": settings.SEAT_SECRET})
        try:
            yield lobby, f"http://127.0.0.1:{port}"
        finally:
            stop(node)


async def play(node_url: str, token: str) -> tuple[codec.Welcome, list]:
    """Join with the seat token and read until the match_end event."""
    ws_url = node_url.replace("http://", "ws://") + "/play/websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(ws_url) as ws:
        await ws.send_bytes(codec.encode(codec.Join(token)))
        welcome = None
        async with asyncio.timeout(40):
            async for frame in ws:
                if frame.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                msg = codec.decode_any(frame.data, max_size=1 << 22)
                if isinstance(msg, codec.Welcome):
                    welcome = msg
                elif isinstance(msg, codec.Error):
                    raise AssertionError(f"node refused: {msg}")
                events = getattr(msg, "events", None) or []
                for event in events:
                    if event[0] == codec.EV_MATCH_END:
                        return welcome, event
    raise AssertionError("no match_end")


async def play_all(node_url: str, tokens: list[str]) -> list:
    return await asyncio.gather(*(play(node_url, t) for t in tokens))


@pytest.mark.parametrize("mode, game, columns", [
    ("sprint", "arena", ["Kills", "Deaths"]), ("tag", "tag", ["Tags", "Caught"])])
def test_guest_queue_match_play_result_rating(lobby_and_node, mode, game, columns):
    lobby, node_url = lobby_and_node
    players = [Session(lobby.url) for _ in range(2)]
    ids = [p.guest()["user_id"] for p in players]

    def node_runs_mode():  # the node's first heartbeat lists its modes
        modes = players[0].request("GET", "/api/modes")[1]["modes"]
        return any(m["mode"] == mode and m["available"] for m in modes)

    wait_for(node_runs_mode, 20, f"the node running {mode}")
    for p in players:
        status, body = p.request("POST", "/api/queue", {"mode": mode})
        assert status == 200, body

    def matched():
        states = [p.request("GET", "/api/queue")[1] for p in players]
        return states if all(s["status"] == "matched" for s in states) else None

    states = wait_for(matched, 30, "both players matched")
    assert states[0]["match_id"] == states[1]["match_id"]
    assert states[0]["node_url"] == node_url and states[0]["token"] != states[1]["token"]
    assert (states[0]["seats"], states[0]["bots"], states[0]["game"]) == (2, 2, game)

    results = asyncio.run(play_all(node_url, [s["token"] for s in states]))
    for welcome, end in results:
        assert welcome.match_id == states[0]["match_id"] and welcome.config["game"] == game
        rows = end[2]  # [player_id, user_id, name, score, placement, bot, *stats]
        assert {r[1] for r in rows if not r[5]} == set(ids) and sum(r[5] for r in rows) == 2

    def rated():
        me = [p.request("GET", "/api/me")[1] for p in players]
        return me if all(m["games"] == 1 for m in me) else None

    me = wait_for(rated, 30, "the node's result in the lobby")
    assert all(set(m["ratings"]) == {game} for m in me)  # rated in this game only
    assert sum(m["ratings"][game]["rating"] for m in me) == pytest.approx(
        2 * settings.RATING_START, abs=0.2)
    board = players[0].request("GET", f"/api/leaderboard?board=week&game={game}")[1]
    assert {r["user_id"] for r in board["rows"]} == set(ids)
    assert all(r["points"] >= 1 for r in board["rows"])
    status, page = players[0].request("GET", f"/matches/{states[0]['match_id']}/")
    assert status == 200 and "finished" in page
    assert "".join(f"<th>{c}</th>" for c in columns) in page  # the game's own columns
    assert players[0].request("GET", "/api/queue")[1] == {"status": "none"}
    assert players[0].request("POST", "/api/queue", {"mode": mode})[0] == 200
