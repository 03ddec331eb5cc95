"""NodeSettings: environment, CLI overrides, validation."""

from __future__ import annotations

import pytest

from engine.auth import derive_node_key
from game_server.settings import NodeSettings


def test_defaults_match_the_protocol():
    s = NodeSettings.from_env({})
    assert (s.max_message_bytes, s.max_input_rate, s.max_send_queue, s.join_timeout,
            s.reconnect_window, s.empty_room_timeout, s.max_rooms, s.max_players) == \
        (1024, 60, 32, 10.0, 20.0, 30.0, 200, 4000)
    assert (s.socket_send_buffer, s.input_window) == (64 * 1024, 10.0)
    # development secrets: the node's key derived from the development master
    assert s.seat_secret == "dev-seat-secret"
    assert s.node_secret == derive_node_key("dev-node-secret", "node-1")
    assert s.public_url == "http://127.0.0.1:8001"
    assert s.outbox_path.endswith("var/outbox-node-1.sqlite3")


def test_environment_then_overrides():
    env = {"ARENA_MAX_INPUT_RATE": "30", "ARENA_JOIN_TIMEOUT": "2.5", "SEAT_SECRET": "s",
           "NODE_SECRET": "n", "ARENA_MAX_ROOMS": ""}
    s = NodeSettings.from_env(env, node_id="node-9", port=9000, max_input_rate=None)
    assert s.max_input_rate == 30 and s.join_timeout == 2.5 and s.max_rooms == 200
    assert (s.seat_secret, s.node_secret) == ("s", derive_node_key("n", "node-9"))
    assert NodeSettings.from_env({**env, "NODE_KEY": "k"}).node_secret == "k"
    assert s.outbox_path.endswith("outbox-node-9.sqlite3")
    assert s.public_url == "http://127.0.0.1:9000"
    assert NodeSettings.from_env(env, max_input_rate=5).max_input_rate == 5


@pytest.mark.parametrize("env", [{"ARENA_MAX_PLAYERS": "lots"}, {"ARENA_MAX_SEND_QUEUE": "0"},
                                 {"ARENA_JOIN_TIMEOUT": "-1"}, {"ARENA_INPUT_WINDOW": "1"},
                                 {"ARENA_SOCKET_SEND_BUFFER": "-1"}])
def test_bad_values_are_refused_clearly(env):
    with pytest.raises(ValueError, match="ARENA_|must be"):
        NodeSettings.from_env(env)


def test_event_loop_is_asyncio_unless_set_and_unknown_loops_are_refused():
    from game_server.__main__ import new_event_loop

    assert NodeSettings().event_loop == "asyncio"
    assert NodeSettings.from_env({"ARENA_EVENT_LOOP": "uvloop"}).event_loop == "uvloop"
    with pytest.raises(ValueError, match="event_loop must be one of uvloop, asyncio"):
        NodeSettings.from_env({"ARENA_EVENT_LOOP": "trio"})
    for name, module in (("uvloop", "uvloop"), ("asyncio", "asyncio")):
        loop = new_event_loop(name)
        try:
            assert type(loop).__module__.split(".")[0] == module
        finally:
            loop.close()
