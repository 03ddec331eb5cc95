"""Joining and playing over the raw binary websocket, against the real Arena and codec."""

from __future__ import annotations

from engine import codec
from tests.game_server.conftest import token


async def test_join_gets_welcome_keyframe_then_deltas(node):
    c = await node.connect()
    await c.send(codec.Join(token("m1", 7, "Ann")))
    welcome = await c.expect(codec.Welcome)
    assert welcome.match_id == "m1" and welcome.player_id >= 1 and welcome.resume_token
    assert welcome.config["mode"] == "sprint" and welcome.config["reconnect_window"] == 2
    key = await c.expect(codec.Keyframe)
    me = key.entities[welcome.player_id]
    assert me[0] == codec.PLAYER and me[codec.P_NAME] == "Ann"
    prev = key.tick
    for _ in range(3):
        d = await c.expect(codec.Delta)
        assert d.base == prev and d.tick > prev  # each delta builds on the previous patch
        prev = d.tick
    assert c.tick == prev  # every delta applied on the state held


async def test_inputs_move_the_player_and_ack_advances(node):
    c = await node.connect()
    w = await c.join(token("m2", 1, "Mover"))
    pid = w.player_id
    x0 = c.entities[pid][codec.P_X]
    last = 0
    for _ in range(10):
        last = await c.input(mx=100)
        await c.recv()
    for _ in range(30):
        await c.expect(codec.Delta)
        if c.entities[pid][codec.P_ACK] == last:
            break
    me = c.entities[pid]
    assert me[codec.P_ACK] == last
    assert me[codec.P_X] > x0


async def test_ping_gets_pong_with_tick(node):
    c = await node.connect()
    await c.join(token("m3"))
    await c.send(codec.Ping(12345))
    pong = await c.expect(codec.Pong)
    assert pong.t == 12345 and pong.tick > 0


async def test_health_and_metrics(node):
    c = await node.connect()
    await c.join(token("m4"))
    await c.expect(codec.Delta)
    status, body = await node.get("/health")
    assert status == 200 and '"rooms": 1' in body
    status, text = await node.get("/metrics")
    assert status == 200
    assert 'arena_players{transport="websocket"} 1' in text
    assert "arena_rooms 1" in text
    assert "arena_tick_seconds_count" in text
    frames = [ln for ln in text.splitlines() if ln.startswith("arena_frames_out_total ")]
    assert int(frames[0].split()[1]) >= 2
    values = dict(ln.split(" ", 1) for ln in text.splitlines() if ln.startswith("process_"))
    assert float(values["process_cpu_seconds_total"]) > 0
    assert int(values["process_resident_memory_bytes"]) > 10_000_000  # a Python process with aiohttp
