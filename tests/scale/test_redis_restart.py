"""Redis restarted mid-run (no persistence: it comes back empty). The cluster runs on a
private `redis-server` on a free port, so this machine's Redis is not disturbed."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from lobby.live import free_port
from tests.services import need

from .players import Player, by_match, join_all, queue_and_match, wait_for
from .test_faults import START, blocking

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.timeout(150)]


class RedisServer:
    """`redis-server` without persistence on 127.0.0.1:<port>, stopped and started again."""

    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.workdir = workdir
        self.pidfile = workdir / "redis.pid"

    def start(self) -> None:
        subprocess.run(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--daemonize", "yes", "--pidfile", str(self.pidfile),
             "--dir", str(self.workdir), "--logfile", str(self.workdir / "redis.log")],
            check=True, timeout=10)
        wait_for(self.ping, 10, "redis-server to answer")

    def ping(self) -> bool:
        try:
            with redis.Redis(port=self.port, socket_timeout=1) as r:
                return bool(r.ping())
        except redis.RedisError:
            return False

    def stop(self) -> None:
        """SHUTDOWN NOSAVE: the data is gone, as after a crash of a Redis without disk."""
        try:
            with redis.Redis(port=self.port, socket_timeout=2) as r:
                r.shutdown(nosave=True)
        except redis.ConnectionError:  # the normal answer to SHUTDOWN: the socket closes
            pass
        wait_for(lambda: not self.ping(), 10, "redis-server to stop")

    def get(self, key: str) -> float:
        """A float key's value (0 when missing)."""
        with redis.Redis(port=self.port, socket_timeout=2, decode_responses=True) as r:
            return float(r.get(key) or 0)

    def keys(self, pattern: str) -> list[str]:
        with redis.Redis(port=self.port, socket_timeout=2, decode_responses=True) as r:
            return sorted(r.scan_iter(match=pattern, count=1000))


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[RedisServer]:
    need(shutil.which("redis-server"), "redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    try:
        yield server
    finally:
        if server.ping():
            server.stop()


async def test_redis_restarted_mid_run(make_cluster, private_redis):
    """While Redis is down and after it comes back empty: the match in progress finishes and
    is recorded; a ticket queued before the outage is kept; players who queue meanwhile are
    either kept waiting or answered with an error (so they know to queue again), and all of
    them get a match once Redis is back; lobby and nodes reconnect by themselves (their
    keys reappear, new seats are accepted). Matches need 2 humans (no bot fill for 60 s)."""
    cluster = await blocking(make_cluster, redis_url=private_redis.url, ARENA_TIME_SCALE="2",
                             ARENA_PRESENCE_INTERVAL="0.5", MATCH_MAX_WAIT="60")
    prefix = cluster.env["REDIS_PREFIX"]
    assert await blocking(private_redis.keys, prefix + "node:*"), "the registry is in Redis"
    playing = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(2)])
    states = await blocking(queue_and_match, playing)
    seats = await join_all(states)
    early = await blocking(Player, cluster.lobby_url)   # alone in the queue: it waits
    queued_at = time.time()
    await blocking(early.queue)
    # a matcher pass has run since it queued (its time in `<prefix>matcher:last`), and
    # left it waiting
    await blocking(wait_for, lambda: private_redis.get(prefix + "matcher:last") > queued_at,
                   20, "a matcher pass after the lone ticket")
    assert (await blocking(early.state))["status"] == "waiting"

    await blocking(private_redis.stop)
    late = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(3)])
    waiting = [early, *late]
    for p in late:
        status, body = await blocking(p.http.request, "POST", "/api/queue", {"mode": "sprint"})
        assert status in (200, 503), (status, body)
        if status != 200:
            assert "error" in body  # a clear answer: the player knows to queue again
    await asyncio.sleep(1.5)  # a few matcher passes and heartbeats without Redis
    assert cluster.dead() == [], "no process died of the outage"

    await blocking(private_redis.start)                  # back, empty
    assert (await blocking(early.state))["status"] in ("waiting", "matched"), \
        "the ticket queued before the outage is kept"
    for p in waiting:                                    # the lobby's answer decides:
        state = await blocking(p.state)                  # kept, or queue again
        if state["status"] == "none":
            await blocking(p.queue)

    def all_matched() -> list[dict] | None:
        got = [p.state() for p in waiting]
        return got if all(s["status"] == "matched" for s in got) else None

    matched = await blocking(wait_for, all_matched, 20, "the waiting players matched", 0.2)
    assert len(by_match(matched)) == 2
    new_seats = await join_all(matched)                  # the nodes seat them
    assert all(seat.welcome.match_id == s["match_id"] for seat, s in zip(new_seats, matched,
                                                                         strict=True))

    # the match that ran through the outage ends and is recorded once
    await asyncio.gather(*(seat.closed(30) for seat in seats))
    assert all(seat.end is not None and seat.end[1] != "aborted" for seat in seats)
    await blocking(wait_for, lambda: all(p.me()["games"] == 1 for p in playing), 20,
                   "the result of the match that ran through the outage")
    assert sum(p.me()["rating"] for p in playing) == pytest.approx(2 * START, abs=0.5)

    # both sides wrote their keys again by themselves
    await blocking(wait_for, lambda: len(private_redis.keys(prefix + "node:*")) == 2, 10,
                   "the lobby's registry entries back in Redis")
    await blocking(wait_for, lambda: private_redis.keys(prefix + "presence:*"), 10,
                   "the nodes' presence back in Redis")
    await asyncio.gather(*(seat.close() for seat in new_seats))
