"""The live lobby on a real uvicorn process: the background matcher forms a match with no
request arriving, the owners' streams are told (with their own seat tokens), a stream that
reconnects with Last-Event-ID misses nothing, a signed-in-only stream refuses strangers."""

from __future__ import annotations

import asyncio
import json
import time

import pytest
from django.conf import settings
from django.db import connection

from engine.auth import derive_node_key, sign_request, verify_seat_token
from engine.registry import registry
from lobby.live import Session, database_url
from lobby.realtime.server import EventStream, UvicornServer

pytestmark = [pytest.mark.timeout(120)]


def lobby_env(**extra: str) -> dict[str, str]:
    return {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
            "MATCH_MAX_WAIT": "1", "MATCH_SIZE": "2", "REDIS_URL": "",
            "NODE_SECRET": settings.NODE_SECRET, "SEAT_SECRET": settings.SEAT_SECRET,
            "SSE_HEARTBEAT": "0.5", **extra}


def node_post(url: str, path: str, data: dict, node_id: str = "n1") -> tuple[int, object]:
    """A signed request, as a game node sends it."""
    body = json.dumps(data).encode()
    headers = sign_request(derive_node_key(settings.NODE_SECRET, node_id), node_id=node_id,
                           method="POST", path=path, body=body, now=time.time())
    return Session(url).request("POST", path, raw=body, headers=headers)


def register_node(url: str, node_id: str = "n1") -> None:
    assert node_post(url, "/api/internal/nodes/heartbeat", {
        "node_id": node_id, "url": "http://127.0.0.1:9", "capacity": 1000, "rooms": 0,
        "players": 0, "draining": False, "modes": list(registry().modes)}, node_id)[0] == 200


@pytest.fixture
def lobby(transactional_db, tmp_path):
    with UvicornServer(env=lobby_env(), log_path=tmp_path / "uvicorn.log") as srv:
        yield srv


def guests(url: str, n: int) -> list[Session]:
    """Signed-in guests; each session's `user_id` set."""
    sessions = [Session(url) for _ in range(n)]
    for s in sessions:
        s.user_id = s.guest()["user_id"]
    return sessions


async def test_matched_with_no_request_pushed_to_each_owner(lobby) -> None:
    register_node(lobby.url)
    a, b = guests(lobby.url, 2)
    streams = [await EventStream.open(lobby.url, s.cookies) for s in (a, b)]
    try:
        for st in streams:
            first = await st.next()
            assert first.event == "state" and first.data == {"status": "none"}
        # two joins; then no request at all: the lifespan's matcher forms the match
        for s in (a, b):
            assert (await asyncio.to_thread(s.request, "POST", "/api/queue", {"mode": "duel"}))[0] == 200
        seen = []
        for s, st in zip((a, b), streams, strict=True):
            msg = await st.until("matched", timeout=15)
            claims = verify_seat_token(settings.SEAT_SECRET, msg.data["token"], node_id="n1",
                                       now=time.time())
            assert claims.u == s.user_id  # each owner gets a token of their own
            assert claims.role == "player" and msg.data["node_url"] == "http://127.0.0.1:9"
            seen.append(msg.data["match_id"])
        assert seen[0] == seen[1]
    finally:
        for st in streams:
            await st.close()


async def test_reconnect_with_last_event_id_misses_nothing(lobby) -> None:
    register_node(lobby.url)
    (a,) = guests(lobby.url, 1)
    st = await EventStream.open(lobby.url, a.cookies, path="/api/events?live=1")
    await st.until("live")
    assert (await asyncio.to_thread(a.request, "POST", "/api/queue", {"mode": "duel"}))[0] == 200
    queued = await st.until("queue")
    assert queued.data["position"] == 1 and queued.data["mode"] == "duel"
    last = st.last_id
    await st.close()
    # while the stream is away: MATCH_MAX_WAIT passes, the lone ticket gets a match with
    # a bot, and `live` lists it; the reconnect replays both from Last-Event-ID
    deadline = time.monotonic() + 15
    while (await asyncio.to_thread(a.request, "GET", "/api/presence"))[1]["presence"] is None:
        assert time.monotonic() < deadline, "no match formed"
        await asyncio.sleep(0.2)
    again = await EventStream.open(lobby.url, a.cookies, path="/api/events?live=1", last_id=last)
    try:
        kinds = []
        while "matched" not in kinds or "live" not in kinds[2:]:
            kinds.append((await again.next()).event)
        assert kinds[0] == "state"  # the state first, then what was missed
        matched = kinds.index("matched")
        assert matched > 1
        # and the heartbeat comments keep an idle stream alive
        comments = again.comments
        with pytest.raises(TimeoutError):
            await again.next(timeout=1.5)
        assert again.comments > comments
    finally:
        await again.close()


async def test_stream_needs_a_session(lobby) -> None:
    with pytest.raises(RuntimeError, match="401"):
        await EventStream.open(lobby.url, {})
    visitor = await EventStream.open(lobby.url, {}, path="/api/events?live=1")  # Live now
    try:
        assert (await visitor.next()).event == "live"
    finally:
        await visitor.close()


async def test_events_cross_workers_through_redis(transactional_db, tmp_path, redis_url,
                                                  redis_prefix) -> None:
    """Two lobby processes on one database and one Redis: the matcher of A and a result
    posted to A reach a stream held by B."""
    shared = {"REDIS_URL": redis_url, "REDIS_PREFIX": redis_prefix}
    with UvicornServer(env=lobby_env(**shared, MATCHER_TASK="1"),
                       log_path=tmp_path / "a.log") as a_srv, \
            UvicornServer(env=lobby_env(**shared, MATCHER_TASK="0"),
                          log_path=tmp_path / "b.log") as b_srv:
        register_node(a_srv.url)
        p, q = guests(b_srv.url, 2)
        stream = await EventStream.open(b_srv.url, p.cookies, path="/api/events?live=1")
        try:
            await stream.until("state")
            for s in (p, q):  # joined on B; A's matcher forms the match, publishes on Redis
                assert (await asyncio.to_thread(s.request, "POST", "/api/queue",
                                                {"mode": "duel"}))[0] == 200
            matched = await stream.until("matched", timeout=15)
            match_id = matched.data["match_id"]
            live = await stream.until("live", timeout=10)
            assert match_id in [m["match_id"] for m in live.data["matches"]]
            players = [{"user_id": s.user_id, "name": f"p{s.user_id}", "score": 3 - i,
                        "placement": i + 1, "bot": False, "stats": {}}
                       for i, s in enumerate((p, q))]
            status, body = await asyncio.to_thread(node_post, a_srv.url, "/api/internal/results", {
                "match_id": match_id, "node_id": "n1", "status": "finished", "reason": "score",
                "ticks": 900, "players": players})
            assert status == 200, body
            result = await stream.until("result", timeout=10, match_id=match_id)
            assert result.data["placement"] == 1 and result.data["change"] > 0
        finally:
            await stream.close()
