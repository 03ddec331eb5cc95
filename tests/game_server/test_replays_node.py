"""Replays on the node (issue 14): every match is recorded, the replay goes to the lobby
through the durable outbox before its result, and it re-derives the posted result."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time

from engine import codec
from engine.recording import load_replay
from engine.replay import compare, verify
from game_server.outbox import Outbox
from lobby.live import free_port
from tests.game_server.conftest import FakeLobby, token

from .test_outbox import NODE_KEY, QUICK, wait_for


async def test_a_played_match_replays_to_its_posted_result(make_node, lobby):
    n = await make_node(lobby_url=lobby.url, **QUICK)
    ann = await n.player(token("rec", 7, "Ann", bots=3))
    bob = await n.player(token("rec", 8, "Bob"))
    for i in range(20):   # inputs, a disconnect and a leave: all of it reaches the game
        await ann.input(mx=100 - i * 10, my=i, aim=i * 7, buttons=i % 2)
        await asyncio.sleep(0.005)
    await bob.ws.close()
    end = await ann.expect(codec.Event, timeout=10)
    assert end.events[0][0] == codec.EV_MATCH_END
    await wait_for(lambda: "rec" in lobby.results)
    result, data = lobby.results["rec"], lobby.replays["rec"]
    assert result["replay"] == {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                                "truncated": False}
    replay = load_replay(data)
    assert (replay.match_id, replay.mode, replay.status) == ("rec", "sprint", "finished")
    kinds = {r[1] for r in replay.log.records}
    assert {"join", "input", "connected"} <= kinds
    assert compare(verify(replay), result) == []
    [row] = n.outbox.replay_rows()
    assert row["uploaded"] and row["held"] == 0 and row["size"] == len(data)  # bytes dropped


async def test_an_aborted_match_goes_with_its_replay(make_node, lobby):
    n = await make_node(lobby_url=lobby.url, empty_room_timeout=0.1, **QUICK)
    c = await n.player(token("gone", 7, "Ann", bots=1))
    await c.input(mx=50)
    await c.send(codec.Leave())
    await wait_for(lambda: "gone" in lobby.results)
    result = lobby.results["gone"]
    assert result["status"] == "aborted"
    replay = load_replay(lobby.replays["gone"])
    assert replay.status == "aborted"
    assert compare(verify(replay), result) == []


async def test_replay_and_result_wait_out_a_lobby_outage_and_go_once(make_node):
    lobby = FakeLobby(port=free_port())  # not listening yet
    n = await make_node(lobby_url=lobby.url, **QUICK)
    c = await n.player(token("later", 7, "Ann", bots=3))
    await c.expect(codec.Event, timeout=10)
    await wait_for(lambda: n.outbox.rows()[0]["attempts"] >= 2)
    assert n.outbox.rows()[0]["last_error"].startswith("replay:")  # the replay goes first
    await lobby.up()
    try:
        await wait_for(lambda: n.outbox.pending_count() == 0)
        assert lobby.posts == 1 and list(lobby.replays) == ["later"]
        assert compare(verify(load_replay(lobby.replays["later"])), lobby.results["later"]) == []
    finally:
        await lobby.down()


async def test_a_refused_replay_does_not_hold_the_result(tmp_path, lobby):
    lobby.replay_status = 400
    box = Outbox(str(tmp_path / "o.sqlite3"), node_id="node-1", node_secret=NODE_KEY,
                 lobby_url=lobby.url, retry_min=0.05, retry_max=0.1)
    box.start()
    try:
        box.add({"match_id": "m", "status": "finished"}, b"not a replay")
        await wait_for(lambda: "m" in lobby.results)
        [row] = box.replay_rows()
        assert row["rejected"].startswith("400") and not row["uploaded"]
        assert box.pending_count() == 0
    finally:
        await box.close()


async def test_a_large_replay_goes_through_and_is_idempotent(tmp_path, lobby):
    big = os.urandom(6 << 20)   # about the compressed bound of a recording
    box = Outbox(str(tmp_path / "o.sqlite3"), node_id="node-1", node_secret=NODE_KEY,
                 lobby_url=lobby.url, retry_min=0.05, retry_max=0.1)
    box.start()
    try:
        box.add({"match_id": "big", "status": "finished"}, big)
        box.add({"match_id": "big", "status": "aborted"}, b"other")   # ignored: first wins
        await wait_for(lambda: "big" in lobby.results, timeout=20)
        assert lobby.replays["big"] == big and lobby.results["big"]["status"] == "finished"
        assert [r["size"] for r in box.replay_rows()] == [len(big)]
    finally:
        await box.close()


async def test_stored_replay_survives_a_node_restart(tmp_path):
    path = str(tmp_path / "o.sqlite3")
    box = Outbox(path, node_id="node-1", node_secret=NODE_KEY)   # no lobby URL: stored only
    box.add({"match_id": "r", "status": "finished"}, b"\x78replay")
    await box.close()
    lobby = FakeLobby(port=free_port())
    await lobby.up()
    box = Outbox(path, node_id="node-1", node_secret=NODE_KEY, lobby_url=lobby.url,
                 retry_min=0.05, retry_max=0.1)
    box.start()
    try:
        deadline = time.monotonic() + 5
        while "r" not in lobby.results:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.02)
        assert lobby.replays["r"] == b"\x78replay"
    finally:
        await box.close()
        await lobby.down()
