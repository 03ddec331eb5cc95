"""Rooms: reconnection, the reconnect window, spectators, room events, the seq rule."""

from __future__ import annotations

import asyncio

from engine import codec
from games.arena.game import FLAG_CONNECTED
from tests.game_server.conftest import Client, assert_unaffected, token


def connected(c: Client, pid: int) -> bool:
    return bool(c.field(pid, "flags") & FLAG_CONNECTED)


async def test_resume_keeps_the_seat_and_gets_a_keyframe(node):
    c = await node.player(token("r1", 1, "Ann"))
    other = await node.player(token("r1", 2, "Bob"))
    pid, resume = c.welcome.player_id, c.welcome.resume_token
    await c.ws.close()  # dropped
    for _ in range(20):
        await other.expect(codec.Delta)
        if not connected(other, pid):
            break
    assert not connected(other, pid)  # shown as away
    back = await node.connect()
    await back.send(codec.Resume(resume))
    w = await back.expect(codec.Welcome)
    assert w.player_id == pid and w.match_id == "r1"
    await back.expect(codec.Keyframe)
    assert back.field(pid, "name") == "Ann" and connected(back, pid)
    seq = await back.input(mx=-100)
    for _ in range(30):
        await back.expect(codec.Delta)
        if back.ack() == seq:
            break
    assert back.ack() == seq  # inputs work on the resumed seat


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
    names = [spec.field(eid, "name") for eid, e in spec.entities.items()
             if e[0] == spec.schema["entities"][0]["kind"]]  # the Arena's players
    assert sorted(names) == ["Ann", "Bot 1", "Bot 2"]
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


async def test_room_events_joined_and_left(node):
    """The room itself emits `joined` [1, player, name] and `left` [2, player]: for the
    bots it adds, each player seated, and each seat gone."""
    first = await node.connect()
    await first.send(codec.Join(token("ev", 1, "Ann", bots=1)))
    w = await first.expect(codec.Welcome)
    key = await first.expect(codec.Keyframe)
    events = list(key.events)
    for _ in range(5):  # the bot's and Ann's joins are in the first patches
        if [codec.EV_JOINED, w.player_id, "Ann"] in events:
            break
        events += (await first.expect(codec.Delta)).events
    assert [codec.EV_JOINED, w.player_id, "Ann"] in events
    assert [e for e in events if e[0] == codec.EV_JOINED and e[2] == "Bot 1"]
    second = await node.player(token("ev", 2, "Bob"))
    bob = second.welcome.player_id
    seen: list = []
    for _ in range(20):
        seen += (await first.expect(codec.Delta)).events
        if [codec.EV_JOINED, bob, "Bob"] in seen:
            break
    assert [codec.EV_JOINED, bob, "Bob"] in seen
    await second.send(codec.Leave())
    for _ in range(20):
        seen += (await first.expect(codec.Delta)).events
        if [codec.EV_LEFT, bob] in seen:
            break
    assert [codec.EV_LEFT, bob] in seen
    assert [e for e in seen if e[0] < 16 and e[0] not in (codec.EV_JOINED, codec.EV_LEFT)] == []


async def _acked(c: Client, seq: int, patches: int = 60) -> bool:
    """True once the client's own `ack` reaches `seq` in the patches it gets."""
    for _ in range(patches):
        await c.expect(codec.Delta)
        if c.ack() == seq:
            return True
    return False


async def test_resume_replacing_an_open_connection_starts_seq_afresh(node):
    """Issue 11, item 15: a `resume` while the old connection is still open replaces it
    (4016 to the old one) and the new connection numbers its inputs from 1 again."""
    a = await node.player(token("sq", 1, "Ann"))
    for _ in range(50):
        await a.input(mx=100)
    assert await _acked(a, 50)
    b = await node.connect()
    await b.send(codec.Resume(a.welcome.resume_token))
    await b.expect(codec.Welcome)
    await b.expect(codec.Keyframe)
    assert await a.closed() == 4016 and a.error == codec.Error(4016, "Replaced")
    for _ in range(3):
        await b.input(mx=-100)   # seq 1, 2, 3
    assert b.seq == 3
    assert await _acked(b, 3), f"ack stayed at {b.ack()}"


async def test_fresh_token_replacing_an_open_connection_starts_seq_afresh(node):
    """The same with a fresh seat token for the seat (the lobby re-issued it)."""
    a = await node.player(token("sq2", 1, "Ann"))
    for _ in range(20):
        await a.input(mx=100)
    assert await _acked(a, 20)
    b = await node.player(token("sq2", 1, "Ann"))
    assert b.welcome.player_id == a.welcome.player_id
    assert await a.closed() == 4016
    await b.input(mx=-100)
    assert await _acked(b, 1), f"ack stayed at {b.ack()}"


async def test_stale_seq_on_one_connection_is_dropped_and_counted(node):
    c = await node.player(token("st", 1))
    await c.send(codec.Input(5, (100, 0, 0, 0)))
    assert await _acked(c, 5)
    before = node.node.metrics.rejected_inputs
    for seq in (5, 4, 1):
        await c.send(codec.Input(seq, (-100, 0, 0, 0)))
    await c.send(codec.Ping(1))
    await c.expect(codec.Pong)   # the inputs before it were handled
    assert node.node.metrics.rejected_inputs == before + 3
    await assert_unaffected(c)
    assert c.ack() == 5
