"""The game node's shared-state interfaces (`game_server.shared_state`), each contract
against the in-process default and Redis (`redis.asyncio`)."""

from __future__ import annotations

import asyncio
import time

import pytest

from game_server.shared_state import (
    InProcessJti,
    InProcessPresence,
    PresencePublisher,
    RedisJti,
    RedisPresence,
    build_shared,
    connect,
    diff_events,
)


async def until_subscribed(board, got: list[dict], timeout: float = 5.0) -> None:
    """Emit probes until the listener filling `got` receives one (it is subscribed), then
    forget them."""
    deadline = time.monotonic() + timeout
    while not any(e.get("type") == "probe" for e in got):
        assert time.monotonic() < deadline, "subscriber never ready"
        await board.emit({"type": "probe"})
        await asyncio.sleep(0.05)
    got[:] = [e for e in got if e.get("type") != "probe"]


def real(events: list[dict]) -> list[dict]:
    return [e for e in events if e.get("type") != "probe"]


@pytest.fixture(params=["in-process", "redis"])
async def shared(request):
    """(presence board, jti store, redis client or None) of one backend."""
    if request.param == "in-process":
        yield InProcessPresence(), InProcessJti(), None
        return
    url, prefix = request.getfixturevalue("redis_url"), request.getfixturevalue("prefix")
    r = connect(url)
    yield RedisPresence(r, prefix), RedisJti(r, prefix, "node-1"), r
    await r.aclose()


async def test_presence_publish_where_and_replace(shared):
    board, _, _ = shared
    await board.publish("node-1", {1: ("m1", True), 2: ("m1", False)}, ttl=10)
    await board.publish("node-2", {3: ("m2", True)}, ttl=10)
    assert await board.where(1) == {"node_id": "node-1", "match_id": "m1", "connected": True}
    assert await board.where(2) == {"node_id": "node-1", "match_id": "m1", "connected": False}
    assert await board.where(3) == {"node_id": "node-2", "match_id": "m2", "connected": True}
    assert await board.where(4) is None
    await board.publish("node-1", {2: ("m3", True)}, ttl=10)  # 1 left, 2 in a new match
    assert await board.where(1) is None
    assert (await board.where(2))["match_id"] == "m3"
    await board.publish("node-2", {2: ("m4", True)}, ttl=10)  # 2 moved to node-2...
    await board.publish("node-1", {}, ttl=10)  # ...and node-1's empty list keeps that
    assert await board.where(2) == {"node_id": "node-2", "match_id": "m4", "connected": True}
    assert await board.where(3) is None


async def test_presence_expires_with_its_node(shared):
    board, _, r = shared
    await board.publish("node-1", {1: ("m1", True)}, ttl=1.0)
    assert await board.where(1) is not None
    await asyncio.sleep(1.1)  # the node stopped publishing (killed)
    assert await board.where(1) is None


async def test_events_reach_subscribers(shared):
    board, _, _ = shared
    got: list[dict] = []

    async def listen() -> None:
        async for event in board.subscribe():
            got.append(event)
            if len(real(got)) == 2:
                return

    task = asyncio.create_task(listen())
    await until_subscribed(board, got)
    await board.emit({"type": "seated", "user_id": 1})
    await board.emit({"type": "left", "user_id": 1})
    await asyncio.wait_for(task, 3)
    assert real(got) == [{"type": "seated", "user_id": 1}, {"type": "left", "user_id": 1}]


def test_diff_events():
    before = {1: ("m1", True), 2: ("m1", True), 3: ("m2", True)}
    after = {1: ("m1", False), 3: ("m3", True), 4: ("m3", True)}
    events = diff_events("n", before, after)
    assert {(e["type"], e.get("user_id"), e["match_id"]) for e in events} == {
        ("seated", 3, "m3"), ("seated", 4, "m3"), ("left", 2, "m1"), ("left", 3, "m2"),
        ("match_ended", None, "m2")}


async def test_publisher_publishes_emits_and_clears_on_close(shared):
    board, _, _ = shared
    players = {1: ("m1", True)}
    pub = PresencePublisher(board, "node-1", lambda: dict(players), interval=0.1)  # ttl 0.3 s
    got: list[dict] = []

    async def listen() -> None:
        async for event in board.subscribe():
            got.append(event)
            if event["type"] == "match_ended":
                return

    task = asyncio.create_task(listen())
    await until_subscribed(board, got)
    pub.start()
    for _ in range(100):  # published, then re-published every 0.1 s
        if await board.where(1):
            break
        await asyncio.sleep(0.02)
    assert (await board.where(1))["match_id"] == "m1"
    players.clear()
    await asyncio.wait_for(task, 3)
    assert [e["type"] for e in real(got)] == ["seated", "left", "match_ended"]
    players[2] = ("m2", True)
    published = pub.published
    while pub.published == published:
        await asyncio.sleep(0.02)
    await pub.close()
    assert await board.where(2) is None and pub.published >= 3


async def test_jti_single_use_even_concurrently(shared):
    _, jti, _ = shared
    now = time.time()
    results = await asyncio.gather(*[jti.claim("t1", now + 30, now) for _ in range(50)])
    assert sorted(results) == [False] * 49 + [True]
    assert await jti.claim("t2", now + 30, now)


async def test_jti_forgotten_after_expiry(shared):
    _, jti, r = shared
    now = time.time()
    assert await jti.claim("t", now + 0.1, now)
    if r is None:  # in-process: purged on a later claim once expired
        assert await jti.claim("t", now + 30, now + 15)
    else:  # Redis: the key lives until exp + 1 s
        ttl = await r.pttl(jti.prefix + "t")
        assert 900 <= ttl <= 1100


async def test_redis_async_client_reconnects_after_client_kill(redis_url, prefix, killer):
    r = connect(redis_url)
    board = RedisPresence(r, prefix)
    await board.publish("node-1", {1: ("m1", True)}, ttl=10)
    victim = await r.client_id()
    assert killer.client_kill_filter(_id=victim) == 1
    assert (await board.where(1))["match_id"] == "m1"  # reconnected by itself
    await board.publish("node-1", {}, ttl=10)
    assert await board.where(1) is None
    await r.aclose()


async def test_publisher_survives_redis_restart(own_redis):
    shared = build_shared(own_redis.url, prefix="t:", node_id="node-1")
    pub = PresencePublisher(shared.presence, "node-1", lambda: {1: ("m1", True)}, interval=0.05)
    assert await pub.publish_once()
    own_redis.stop()
    assert not await pub.publish_once()  # logged and retried, never raised
    assert pub.failures == 1
    own_redis.start()  # empty: no persistence
    assert await pub.publish_once()
    assert (await shared.presence.where(1))["node_id"] == "node-1"
    await shared.close()


def test_factory_chooses_by_url():
    local = build_shared("", node_id="n")
    assert isinstance(local.presence, InProcessPresence) and isinstance(local.jti, InProcessJti)
    remote = build_shared("redis://127.0.0.1:1/0", node_id="n")  # not contacted yet
    assert isinstance(remote.presence, RedisPresence) and isinstance(remote.jti, RedisJti)
