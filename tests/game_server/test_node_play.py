"""Joining and playing over the raw binary websocket, against the real Arena and codec."""

from __future__ import annotations

import json

from engine import codec
from engine.registry import registry
from tests.game_server.conftest import assert_unaffected, token


async def test_join_gets_welcome_keyframe_then_deltas(node):
    c = await node.connect()
    await c.send(codec.Join(token("m1", 7, "Ann")))
    welcome = await c.expect(codec.Welcome)
    assert welcome.match_id == "m1" and welcome.player_id >= 1 and welcome.resume_token
    config = welcome.config
    assert config["game"] == "arena" and config["mode"] == "sprint"
    assert config["protocol"] == codec.PROTOCOL_VERSION == 2
    assert config["reconnect_window"] == 2 and config["match_id"] == "m1"
    assert config["patch_hz"] == 30  # the node's game_overrides
    assert config["sim_hz"] == registry().mode("sprint")[1].config.sim_hz
    assert config["schema"] == registry().game("arena").schema()
    assert {"max_players", "max_input_rate", "time_limit", "width", "walls"} <= set(config)
    key = await c.expect(codec.Keyframe)
    me = key.entities[welcome.player_id]
    assert [e["name"] for e in c.schema["entities"] if e["kind"] == me[0]] == ["player"]
    assert c.field(welcome.player_id, "name", key.entities) == "Ann"
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
    x0 = c.field(pid, "x")
    last = 0
    for _ in range(10):
        last = await c.input(mx=100)
        await c.recv()
    for _ in range(30):
        await c.expect(codec.Delta)
        if c.ack() == last:
            break
    assert c.ack() == last
    assert c.field(pid, "x") > x0


async def test_input_of_the_wrong_arity_is_4001(node):
    """`[3, seq, *values]` must carry exactly the game's input fields (4 for the Arena)."""
    calm = await node.player(token("ar", 2, "Calm"))
    for values in [(100, 0, 0), (100, 0, 0, 0, 0), ()]:
        c = await node.player(token("ar", 10 + len(values), "Odd"))
        await c.send(codec.Input(1, values))
        assert await c.closed() == 4001 and c.error == codec.Error(4001, "Bad message")
    await assert_unaffected(calm)


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
    health = json.loads(body)
    assert status == 200 and health["rooms"] == 1
    assert health["modes"] == list(registry().modes) and "sprint" in health["modes"]
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
