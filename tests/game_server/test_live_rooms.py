"""The heartbeat's `matches` (game_server/live.py): per running room the seconds left and
the leading scores, for the lobby's Live now page."""

from __future__ import annotations

from game_server.app import LOBBY_KEY

from .conftest import token


async def test_heartbeat_lists_each_room_with_time_left_and_top_scores(node):
    await node.player(token("m-live", 1, "Ann", bots=3))
    status = node.app[LOBBY_KEY].status()
    (room,) = status["matches"]
    assert room["match_id"] == "m-live"
    assert 0 < room["left"] <= 20  # sprint: 20 s
    assert len(room["top"]) == 3 and {n for n, _ in room["top"]} <= {"Ann", "Bot 1", "Bot 2", "Bot 3"}
    assert all(isinstance(score, int) for _, score in room["top"])


async def test_a_finished_room_is_not_listed(node):
    await node.player(token("m-done", 1, "Ann"))
    node.node.rooms["m-done"].finish("aborted", "test")
    assert node.app[LOBBY_KEY].status()["matches"] == []
