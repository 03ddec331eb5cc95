"""Live now's score and time left: a node's heartbeat lists its rooms (`matches`), the
lobby keeps them with the node (database row or Redis hash) and publishes `live` when a
room's leading scores change; a bad `matches` is refused."""

from __future__ import annotations

import asyncio
import time

import pytest

from lobby.realtime.server import EventStream, UvicornServer

from .test_stream import guests, lobby_env, node_post, register_node

pytestmark = [pytest.mark.timeout(120)]

HEARTBEAT = "/api/internal/nodes/heartbeat"


def beat(url: str, matches: list) -> tuple[int, object]:
    from engine.registry import registry

    return node_post(url, HEARTBEAT, {
        "node_id": "n1", "url": "http://127.0.0.1:9", "capacity": 1000, "rooms": len(matches),
        "players": 2, "draining": False, "modes": list(registry().modes), "matches": matches})


async def scores_follow_heartbeats(url: str) -> None:
    register_node(url)
    p, q = guests(url, 2)
    stream = await EventStream.open(url, p.cookies, path="/api/events?live=1")
    try:
        for s in (p, q):
            assert (await asyncio.to_thread(s.request, "POST", "/api/queue",
                                            {"mode": "duel"}))[0] == 200
        match_id = (await stream.until("matched", timeout=15)).data["match_id"]

        async def live_with(top: list) -> dict:
            while True:
                event = await stream.until("live", timeout=10)
                row = next((m for m in event.data["matches"] if m["match_id"] == match_id), None)
                if row is not None and row["top"] == top:
                    return row

        top = [[f"p{p.user_id}", 2], [f"p{q.user_id}", 1]]
        sent = time.time()
        status, body = await asyncio.to_thread(beat, url, [
            {"match_id": match_id, "left": 42.5, "top": top}])
        assert status == 200, body
        row = await live_with(top)
        assert sent + 42 <= row["ends"] <= time.time() + 43
        top = [[f"p{q.user_id}", 4], [f"p{p.user_id}", 2]]  # the lead changed
        assert (await asyncio.to_thread(beat, url, [
            {"match_id": match_id, "left": 37, "top": top}]))[0] == 200
        await live_with(top)
        status, page = await asyncio.to_thread(p.request, "GET", "/live/")  # rendered too
        assert status == 200 and f"p{q.user_id} 4, p{p.user_id} 2" in page
        assert 'data-ends="' in page
    finally:
        await stream.close()


async def test_scores_and_time_left_reach_live_now(transactional_db, tmp_path) -> None:
    with UvicornServer(env=lobby_env(), log_path=tmp_path / "uvicorn.log") as srv:
        await scores_follow_heartbeats(srv.url)


async def test_scores_through_the_redis_registry(transactional_db, tmp_path, redis_url,
                                                 redis_prefix) -> None:
    env = lobby_env(REDIS_URL=redis_url, REDIS_PREFIX=redis_prefix, MATCHER_TASK="1")
    with UvicornServer(env=env, log_path=tmp_path / "uvicorn.log") as srv:
        await scores_follow_heartbeats(srv.url)


@pytest.mark.parametrize("matches", [
    "x", [{"match_id": "m", "left": -1, "top": []}], [{"match_id": "m", "left": 1}],
    [{"match_id": "m", "left": 1, "top": [["a", 1]] * 4}],
    [{"match_id": "m", "left": 1, "top": [["a", "1"]]}],
    [{"match_id": "", "left": 1, "top": []}],
    [{"match_id": "m", "left": 1, "top": []}] * 1001])
def test_a_bad_matches_list_is_refused(db, client, matches) -> None:
    from engine.registry import registry
    from tests.lobby.conftest import signed_post

    r = signed_post(client, HEARTBEAT, {
        "node_id": "n1", "url": "http://127.0.0.1:9", "capacity": 10, "rooms": 0, "players": 0,
        "draining": False, "modes": list(registry().modes), "matches": matches}, node_id="n1")
    assert r.status_code == 400 and "matches must be" in r.json()["error"]


async def test_a_ticket_joining_publishes_the_players_online(transactional_db, tmp_path) -> None:
    """The home page's players online: `live` follows the tickets waiting too."""
    with UvicornServer(env=lobby_env(MATCH_MAX_WAIT="30"), log_path=tmp_path / "u.log") as srv:
        register_node(srv.url)
        (p,) = guests(srv.url, 1)
        visitor = await EventStream.open(srv.url, {}, path="/api/events?live=1")
        try:
            assert (await visitor.until("live")).data["waiting"] == 0
            assert (await asyncio.to_thread(p.request, "POST", "/api/queue",
                                            {"mode": "duel"}))[0] == 200
            while (await visitor.until("live", timeout=10)).data["waiting"] != 1:
                pass
            status, page = await asyncio.to_thread(p.request, "GET", "/")
            assert status == 200 and "<strong data-live-online>1</strong> players online" in page
        finally:
            await visitor.close()
