"""Rooms: reconnection, the reconnect window, spectators, a whole match to its result."""

from __future__ import annotations

import asyncio

from engine import codec
from tests.game_server.conftest import assert_unaffected, token


async def test_resume_keeps_the_seat_and_gets_a_keyframe(node):
    c = await node.player(token("r1", 1, "Ann"))
    other = await node.player(token("r1", 2, "Bob"))
    pid, resume = c.welcome.player_id, c.welcome.resume_token
    await c.ws.close()  # dropped
    for _ in range(20):
        await other.expect(codec.Delta)
        if other.entities[pid][codec.P_FLAGS] & codec.FLAG_CONNECTED == 0:
            break
    assert other.entities[pid][codec.P_FLAGS] & codec.FLAG_CONNECTED == 0  # shown as away
    back = await node.connect()
    await back.send(codec.Resume(resume))
    w = await back.expect(codec.Welcome)
    assert w.player_id == pid and w.match_id == "r1"
    key = await back.expect(codec.Keyframe)
    assert key.entities[pid][codec.P_NAME] == "Ann"
    assert key.entities[pid][codec.P_FLAGS] & codec.FLAG_CONNECTED
    seq = await back.input(mx=-100)
    for _ in range(30):
        await back.expect(codec.Delta)
        if back.entities[pid][codec.P_ACK] == seq:
            break
    assert back.entities[pid][codec.P_ACK] == seq  # inputs work on the resumed seat


async def test_after_the_window_the_room_sees_a_leave(make_node):
    n = await make_node(reconnect_window=0.3)
    c = await n.player(token("r2", 1))
    other = await n.player(token("r2", 2))
    pid, resume = c.welcome.player_id, c.welcome.resume_token
    await c.ws.close()
    left = None
    for _ in range(60):
        m = await other.expect(codec.Delta)
        if [codec.EV_LEFT, pid] in m.events:
            left = m
            break
    assert left is not None and pid in left.removed
    late = await n.connect()
    await late.send(codec.Resume(resume))
    assert await late.closed() == 4015


async def test_leave_frees_the_seat_now(node):
    c = await node.player(token("r3", 1))
    other = await node.player(token("r3", 2))
    pid = c.welcome.player_id
    await c.send(codec.Leave())
    assert await c.closed() == 1000
    for _ in range(20):
        m = await other.expect(codec.Delta)
        if [codec.EV_LEFT, pid] in m.events:
            break
    assert pid not in other.entities


async def test_spectator_watches_without_playing(node):
    player = await node.player(token("s1", 1, "Ann", bots=2))
    spec = await node.connect()
    w = await spec.join(token("s1", 50, "Watcher", role="spectator"))
    assert w.player_id == 0 and w.resume_token == ""
    players = [e for e in spec.entities.values() if e[0] == codec.PLAYER]
    assert sorted(e[codec.P_NAME] for e in players) == ["Ann", "Bot 1", "Bot 2"]
    before = node.node.metrics.rejected_inputs
    await spec.input(mx=100)
    await assert_unaffected(spec)   # inputs are ignored, not punished
    assert node.node.metrics.rejected_inputs == before + 1
    await spec.ws.close()
    await assert_unaffected(player)


async def test_empty_room_is_disposed(make_node):
    n = await make_node(empty_room_timeout=0.3, reconnect_window=0.2)
    c = await n.player(token("e1", 1))
    assert "e1" in n.node.rooms
    await c.ws.close()
    for _ in range(40):
        await asyncio.sleep(0.05)
        if "e1" not in n.node.rooms:
            break
    assert "e1" not in n.node.rooms
    [row] = n.outbox.rows()
    assert row["match_id"] == "e1" and row["result"]["status"] == "aborted"
