"""Every close code and limit of docs/protocol.md, each against a live node, each checked
to leave another player (in another room) untouched."""

from __future__ import annotations

import asyncio
import base64
import struct
import time

import msgpack
import pytest

from engine import codec
from engine.auth import verify_seat_token
from game_server.app import SHARED_KEY
from game_server.settings import DEV_SEAT_SECRET
from tests.game_server.conftest import (
    assert_unaffected,
    parse_server_frames,
    raw_websocket,
    token,
    ws_frame,
)


@pytest.fixture
async def bystander(node):
    c = await node.player(token("calm", 99, "Calm"))
    yield c
    await assert_unaffected(c)
    await c.close()


async def closed_with(c, expected: int) -> None:
    code = await c.closed()
    assert code == expected
    assert c.error is not None and c.error.code == expected  # error(code) came first


@pytest.mark.parametrize("data", [
    b"\xc1",                                   # never-used msgpack byte
    msgpack.packb([3]),                        # input without its seq (arity: test_node_play)
    msgpack.packb([3, -1, 0, 0, 0, 0]),        # seq not a u32
    msgpack.packb([3, 1, 0, 0, "x", 0]),       # wrong type
    msgpack.packb({"t": 1}),                   # not an array
    "not base64!",                             # text frame: bad base64
    base64.b64encode(b"\x92\x01").decode(),    # text frame: base64 of truncated msgpack
])
async def test_bad_message_4001(node, bystander, data):
    c = await node.connect()
    await c.send_raw(data)
    await closed_with(c, 4001)


@pytest.mark.parametrize("data", [msgpack.packb([1, "x" * 2000]),
                                  base64.b64encode(msgpack.packb([1, "x" * 2000])).decode()])
async def test_too_large_4002(node, bystander, data):
    c = await node.connect()
    await c.send_raw(data)
    await closed_with(c, 4002)


@pytest.mark.parametrize("data", [msgpack.packb([99]), codec.encode(codec.Pong(1, 2))])
async def test_unknown_type_4003(node, bystander, data):
    c = await node.connect()
    await c.send_raw(data)
    await closed_with(c, 4003)


async def test_input_flood_4004(make_node):
    n = await make_node(max_input_rate=20)
    calm = await n.player(token("calm", 99))
    c = await n.player(token("flood", 1))
    for _ in range(41):  # burst is 2 x 20
        await c.input(mx=100)
    await closed_with(c, 4004)
    await assert_unaffected(calm)


async def test_input_within_rate_is_fine(make_node):
    n = await make_node(max_input_rate=20)
    c = await n.player(token("ok", 1))
    for _ in range(30):  # within the burst, then steady below the rate
        await c.input(mx=100)
    for _ in range(10):
        await asyncio.sleep(0.06)
        await c.input(mx=100)
    await assert_unaffected(c)


async def test_join_timeout_4005(make_node):
    n = await make_node(join_timeout=0.3)
    calm = await n.player(token("calm", 99))
    t0 = time.monotonic()  # before the connection exists: the node cannot close it sooner
    c = await n.connect()
    code = await c.closed(timeout=30)  # the deadline only bounds a hang, on a loaded machine
    assert code == 4005 and c.error is not None and c.error.code == 4005
    assert time.monotonic() - t0 >= 0.3  # not before join_timeout
    await assert_unaffected(calm)


async def test_input_before_join_4006(node, bystander):
    c = await node.connect()
    await c.input()
    await closed_with(c, 4006)


async def test_second_join_4006(node, bystander):
    c = await node.player(token("m", 1))
    await c.send(codec.Join(token("m", 2)))
    await closed_with(c, 4006)


async def test_leave_before_join_4006(node, bystander):
    c = await node.connect()
    await c.send(codec.Leave())
    await closed_with(c, 4006)


@pytest.mark.parametrize("tok", [
    token("m", 1, secret="not-the-secret"),
    "v1.e30.AAAA",
    "garbage",
    token("m", 1)[:-3] + "abc",
])
async def test_forged_token_4010(node, bystander, tok):
    c = await node.connect()
    await c.send(codec.Join(tok))
    await closed_with(c, 4010)


async def test_unknown_mode_4010(node, bystander):
    c = await node.connect()
    await c.send(codec.Join(token("m", 1, mode="no-such-mode")))
    await closed_with(c, 4010)


async def test_expired_token_4011(node, bystander):
    c = await node.connect()
    await c.send(codec.Join(token("m", 1, now=time.time() - 100, ttl=30)))
    await closed_with(c, 4011)


async def test_replayed_token_4012(node, bystander):
    tok = token("m", 1)
    first = await node.player(tok)
    c = await node.connect()
    await c.send(codec.Join(tok))
    await closed_with(c, 4012)
    await assert_unaffected(first)


async def test_token_used_in_the_shared_store_4012(node, bystander):
    """Used ids live in the node's shared store (`app[SHARED_KEY].jti`: Redis with
    REDIS_URL, so a restarted node still refuses them), not in a dict of the node."""
    tok = token("m", 1, jti="seen-elsewhere")
    claims = verify_seat_token(DEV_SEAT_SECRET, tok, node_id="node-1", now=time.time())
    assert await node.app[SHARED_KEY].jti.claim(claims.jti, claims.exp, time.time())
    c = await node.connect()
    await c.send(codec.Join(tok))
    await closed_with(c, 4012)


async def test_input_right_after_join_is_not_a_violation(node, bystander):
    """`join` waits for the jti store: an input sent before the `welcome` is dropped."""
    c = await node.connect()
    await c.send(codec.Join(token("m", 1)))
    await c.input(mx=100)
    await c.expect(codec.Welcome)
    await c.expect(codec.Keyframe)
    await c.input(mx=100)
    await assert_unaffected(c)


async def test_wrong_node_4013(node, bystander):
    c = await node.connect()
    await c.send(codec.Join(token("m", 1, node="node-2")))
    await closed_with(c, 4013)


async def test_node_full_rooms_4014(make_node):
    n = await make_node(max_rooms=1)
    calm = await n.player(token("calm", 99))
    c = await n.connect()
    await c.send(codec.Join(token("other", 1)))
    await closed_with(c, 4014)
    await assert_unaffected(calm)


async def test_node_full_players_4014(make_node):
    n = await make_node(max_players=2)
    calm = await n.player(token("calm", 99))
    await n.player(token("calm", 98))
    c = await n.connect()
    await c.send(codec.Join(token("calm", 97)))
    await closed_with(c, 4014)
    await assert_unaffected(calm)


async def test_game_full_4014(node, bystander):
    await node.player(token("duel", 1, mode="duel"))
    await node.player(token("duel", 2, mode="duel"))
    c = await node.connect()
    await c.send(codec.Join(token("duel", 3, mode="duel")))
    await closed_with(c, 4014)


async def test_bad_resume_4015(node, bystander):
    c = await node.connect()
    await c.send(codec.Resume("no-such-resume-token"))
    await closed_with(c, 4015)


async def test_resume_replaces_old_connection_4016(node, bystander):
    old = await node.player(token("m", 1))
    new = await node.connect()
    await new.send(codec.Resume(old.welcome.resume_token))
    w = await new.expect(codec.Welcome)
    assert w.player_id == old.welcome.player_id
    await new.expect(codec.Keyframe)
    await closed_with(old, 4016)
    await assert_unaffected(new)


async def test_new_token_for_held_seat_replaces_4016(node, bystander):
    old = await node.player(token("m", 1))
    new = await node.player(token("m", 1))
    assert new.welcome.player_id == old.welcome.player_id
    await closed_with(old, 4016)


async def test_slow_consumer_4020(make_node):
    n = await make_node(max_send_queue=4, socket_send_buffer=4096, time_scale=3.0,
                        game_overrides={"patch_hz": 30, "time_limit": 120, "score_limit": 1000})
    calm = await n.player(token("calm", 99))
    host, port = n.server.host, n.server.port
    reader, writer = await raw_websocket(host, port, rcvbuf=2048)
    writer.write(ws_frame(codec.encode(codec.Join(token("busy", 1, bots=15)))))
    await writer.drain()
    metrics = n.node.metrics
    deadline = time.monotonic() + 15
    while not metrics.closed_by_code[4020] and time.monotonic() < deadline:
        await calm.expect(codec.Delta)   # keeps flowing while the other one stalls
    assert metrics.closed_by_code[4020] == 1
    assert metrics.queue_drops >= 4
    # Everything the node wrote before closing still arrives, ending with error + close.
    data = await asyncio.wait_for(reader.read(), 10)
    frames = parse_server_frames(data)
    op, payload = frames[-1]
    assert op == 0x8 and struct.unpack("!H", payload[:2])[0] == 4020
    last_msg = codec.decode(frames[-2][1], max_size=1 << 22)
    assert last_msg == codec.Error(4020, "Slow consumer")
    writer.close()


async def test_match_over_4040(make_node):
    n = await make_node(game_overrides={"time_limit": 1, "patch_hz": 30})
    c = await n.player(token("short", 1, bots=1))
    end = await c.expect(codec.Event, timeout=5)
    assert end.events[0][0] == codec.EV_MATCH_END
    assert await c.closed() == 1000
    late = await n.connect()
    await late.send(codec.Join(token("short", 2)))
    await closed_with(late, 4040)


async def test_a_room_that_raises_is_aborted_alone_1011(node, bystander):
    c = await node.player(token("buggy", 5, "Bug"))
    room = node.node.rooms["buggy"]

    def broken_step() -> None:
        raise RuntimeError("a bug in the game")

    room.game.step = broken_step
    assert await c.closed() == 1011
    [row] = [r for r in node.outbox.rows() if r["match_id"] == "buggy"]
    assert row["result"]["status"] == "aborted"  # recorded, so the lobby frees the seats
