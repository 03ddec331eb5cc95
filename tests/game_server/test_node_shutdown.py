"""SIGTERM on a real node process: clients get 4030, rooms are aborted, results delivered."""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys

import aiohttp
import pytest

from engine import codec
from loadtest.procs import start_node
from tests.game_server.conftest import Client

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def devtoken(*args: str) -> str:
    out = subprocess.run([sys.executable, "-m", "game_server.devtoken", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=20, check=True)
    return out.stdout.strip()


@pytest.fixture
async def node_process(tmp_path, lobby):
    """A real node (its log in a file: an unread pipe would block it once full), ready
    when its /health names it; started in a thread so that `lobby` keeps answering."""
    outbox = tmp_path / "outbox.sqlite3"
    env = {**os.environ, "ARENA_JOIN_TIMEOUT": "5", "SEAT_SECRET": "s3cret"}
    proc, port = await asyncio.to_thread(
        start_node, lambda port: [sys.executable, "-m", "game_server", "--host", "127.0.0.1",
                                  "--port", str(port), "--node-id", "node-7",
                                  "--lobby-url", lobby.url, "--outbox", str(outbox)],
        "node-7", log_path=tmp_path / "node.log", env=env, cwd=ROOT)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        yield proc, url, session, outbox
    if proc.poll() is None:
        proc.kill()
    proc.wait(10)


async def test_sigterm_closes_4030_aborts_rooms_and_flushes(node_process, lobby):
    proc, url, session, outbox = node_process
    env_secret = {"SEAT_SECRET": "s3cret"}
    os.environ.update(env_secret)
    try:
        tokens = [devtoken("--match", m, "--user", str(u), "--name", "P", "--node", "node-7",
                           "--bots", "2") for m, u in (("a", 1), ("b", 2))]
    finally:
        os.environ.pop("SEAT_SECRET")
    clients = []
    for tok in tokens:
        ws = await session.ws_connect(url + "/play/websocket", autoclose=False)
        c = Client(ws)
        await c.join(tok)
        clients.append(c)
    proc.send_signal(signal.SIGTERM)
    for c in clients:
        end = await c.expect(codec.Event, timeout=5)
        assert end.events[0][:2] == [codec.EV_MATCH_END, "aborted"]
        assert await c.closed() == 4030
        assert c.error == codec.Error(4030, "Node shutting down")
    # wait without blocking the loop: the fake lobby must answer meanwhile
    assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15) == 0
    assert sorted(lobby.results) == ["a", "b"]
    assert all(r["status"] == "aborted" and r["node_id"] == "node-7" for r in lobby.results.values())
    with sqlite3.connect(outbox) as db:  # recorded first, then marked delivered
        rows = db.execute("SELECT match_id, delivered IS NOT NULL FROM results").fetchall()
    assert sorted(rows) == [("a", 1), ("b", 1)]
