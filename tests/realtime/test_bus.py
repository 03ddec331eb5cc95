"""The event bus: delivery, resume from a last id, replay without gaps or repeats, on the
in-process bus and on real Redis (two bus objects stand for two worker processes)."""

from __future__ import annotations

import asyncio

import pytest

from lobby.shared.bus import MemoryBus, RedisBus, parse_id


async def drain(sub, n: int, timeout: float = 5.0) -> list:
    got = []
    while len(got) < n:
        event = await sub.get(timeout)
        assert event is not None, f"only {len(got)} of {n} events arrived"
        got.append(event)
    return got


@pytest.fixture(params=["memory", "redis"])
def two_buses(request):
    """(publisher, subscriber): the same object in memory, two connections on Redis."""
    if request.param == "memory":
        bus = MemoryBus(keep=50)
        return bus, bus
    url = request.getfixturevalue("redis_url")
    prefix = request.getfixturevalue("redis_prefix")
    return RedisBus(url, prefix, keep=50), RedisBus(url, prefix, keep=50)


async def test_publish_reaches_subscriber_and_resume_misses_nothing(two_buses) -> None:
    pub, sub_bus = two_buses
    first = pub.publish("user:1", {"n": 0})
    sub = await sub_bus.subscribe({"user:1": None, "live": None})
    assert sub.cursors["user:1"] == sub.start["user:1"] == first  # only new events
    ids = [await asyncio.to_thread(pub.publish, "user:1", {"n": i}) for i in range(1, 6)]
    pub.publish("user:2", {"n": "other"})  # another channel: not delivered
    pub.publish("live", {"n": "live"})
    got = await drain(sub, 6)
    assert [e.data["n"] for e in got if e.channel == "user:1"] == [1, 2, 3, 4, 5]
    assert [e.id for e in got if e.channel == "user:1"] == ids
    assert {e.channel for e in got} == {"user:1", "live"}
    assert await sub.get(0.2) is None
    await sub.close()

    # gone for a while: 3 more events, then a resume from the last id seen (ids[2])
    later = [pub.publish("user:1", {"n": i}) for i in range(6, 9)]
    again = await sub_bus.subscribe({"user:1": ids[2]})
    pub.publish("user:1", {"n": 9})
    got = await drain(again, 6)
    assert [e.data["n"] for e in got] == [4, 5, 6, 7, 8, 9]  # no gap, no repeat
    assert [e.id for e in got][2:5] == later
    assert not again.gap
    assert await again.get(0.2) is None
    await again.close()
    if pub is not sub_bus:
        await sub_bus.aclose()


async def test_resume_older_than_kept_says_gap(two_buses) -> None:
    pub, sub_bus = two_buses
    first = pub.publish("user:7", {"n": 0})
    for i in range(1, 120):
        pub.publish("user:7", {"n": i})
    sub = await sub_bus.subscribe({"user:7": first})
    assert sub.gap  # the events between were dropped: the stream rereads the state
    got = await drain(sub, 40)
    assert got[-1].data["n"] == got[0].data["n"] + 39
    await sub.close()
    if pub is not sub_bus:
        await sub_bus.aclose()


def test_ids_increase() -> None:
    bus = MemoryBus()
    ids = [bus.publish("c", {}) for _ in range(1000)]
    assert [parse_id(i) for i in ids] == sorted(parse_id(i) for i in ids)
    assert len(set(ids)) == 1000
    assert parse_id("garbage") is None and parse_id("") is None


async def test_redis_restart_loses_no_event_published_after_it() -> None:
    """Redis restarted empty under a subscriber: its reader reconnects, resubscribes and
    reads from the stream what was published before it was back on pub/sub."""
    import shutil

    from tests.services import need
    from tests.shared_state.conftest import OwnRedis

    need(shutil.which("redis-server"), "redis-server not installed")
    server = OwnRedis()
    server.start()
    try:
        pub, sub_bus = RedisBus(server.url, "t:"), RedisBus(server.url, "t:")
        sub = await sub_bus.subscribe({"user:1": None})
        pub.publish("user:1", {"n": 1})
        assert (await drain(sub, 1))[0].data == {"n": 1}
        await asyncio.to_thread(server.stop)
        await asyncio.sleep(0.3)  # the reader notices
        await asyncio.to_thread(server.start)
        for n in (2, 3):  # at once: before the reader is back on pub/sub
            pub.publish("user:1", {"n": n})
        got = await drain(sub, 2, timeout=10)
        assert [e.data["n"] for e in got] == [2, 3]
        await sub.close()
        await sub_bus.aclose()
    finally:
        server.stop()
