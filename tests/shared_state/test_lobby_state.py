"""The lobby's shared-state interfaces, each contract against both implementations:
the database default and Redis (`lobby.shared`)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from unittest import mock

import pytest
import redis

from lobby.shared.client import RETRIES, SOCKET_TIMEOUT, connect
from lobby.shared.gate import DbPassGate, RedisPassGate
from lobby.shared.nodes import (
    PENDING_GRACE,
    DbNodeRegistry,
    NodeInfo,
    Pending,
    RedisNodeRegistry,
    carry_pending,
    pending_window,
)
from lobby.shared.nonces import DbNonces, RedisNonces
from lobby.shared.ratelimit import DbLoginLimiter, RedisLoginLimiter

BACKENDS = ["database", "redis"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    return request.param


@pytest.fixture
def r(request, backend):
    """The Redis client of the Redis variant (None for the database)."""
    if backend == "database":
        yield None
        return
    url = request.getfixturevalue("redis_url")
    client = connect(url)
    yield client
    client.close()


@pytest.fixture
def p(request, backend) -> str:
    return request.getfixturevalue("prefix") if backend == "redis" else ""


def node(node_id: str, *, capacity: int = 100, players: int = 0, rooms: int = 0,
         max_rooms: int = 0, draining: bool = False, now: float | None = None,
         boot: str = "", seated: int = 0, opened: int = 0) -> NodeInfo:
    """A heartbeat; `boot`, `seated`, `opened`: its counters (none: an older node)."""
    return NodeInfo(node_id, f"http://127.0.0.1:9/{node_id}", capacity, max_rooms, rooms,
                    players, draining, time.time() if now is None else now,
                    boot=boot, seated_total=seated, rooms_total=opened)


# --- nonces ------------------------------------------------------------------------------

def test_nonce_once_per_node(db, r, p):
    store = RedisNonces(r, p) if r else DbNonces()
    now = time.time()
    assert store.claim("node-1", "n1", now)
    assert not store.claim("node-1", "n1", now)
    assert store.claim("node-2", "n1", now)  # another node's nonce space
    assert store.claim("node-1", "n2", now)


def test_redis_nonce_expires_after_window(redis_url, prefix):
    store = RedisNonces(connect(redis_url), prefix, window=1.0)
    assert store.claim("node-1", "n", time.time())
    assert not store.claim("node-1", "n", time.time())
    time.sleep(1.1)
    assert store.claim("node-1", "n", time.time())


def test_redis_nonce_concurrent_claims_one_wins(redis_url, prefix):
    store = RedisNonces(connect(redis_url), prefix)
    barrier = threading.Barrier(8)

    def claim(_: int) -> bool:
        barrier.wait(timeout=5)
        return store.claim("node-1", "same", time.time())

    with ThreadPoolExecutor(8) as pool:
        assert sorted(pool.map(claim, range(8))) == [False] * 7 + [True]


# --- login rate limit ------------------------------------------------------------------------

def test_login_limit_per_key_window_and_clear(db, r, p):
    limiter = RedisLoginLimiter(r, p, 3, 60) if r else DbLoginLimiter(3, 60)
    now = time.time()
    keys = ["u:fred", "ip:10.0.0.1"]
    for i in range(2):
        limiter.record_failure(keys, now - 100 + i)  # outside the window: not counted
    for _ in range(2):
        limiter.record_failure(keys, now)
    assert not limiter.blocked(keys, now)
    limiter.record_failure(keys, now)
    assert limiter.blocked(keys, now) and limiter.blocked(["u:fred"], now)
    assert limiter.blocked(["ip:10.0.0.1"], now) and not limiter.blocked(["u:other"], now)
    assert not limiter.blocked(keys, now + 61)  # the window passed
    limiter.clear("u:fred")
    assert not limiter.blocked(["u:fred"], now) and limiter.blocked(["ip:10.0.0.1"], now)


def test_redis_login_key_expires_by_itself(redis_url, prefix):
    r = connect(redis_url)
    limiter = RedisLoginLimiter(r, prefix, 1, 1)
    limiter.record_failure(["u:x"], time.time())
    assert 0 < r.pttl(f"{prefix}login:u:x") <= 2000
    assert limiter.blocked(["u:x"], time.time())


def test_redis_login_concurrent_failures_all_counted(redis_url, prefix):
    limiter = RedisLoginLimiter(connect(redis_url), prefix, 1000, 60)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda _: limiter.record_failure(["u:x"], time.time()), range(200)))
    assert connect(redis_url).zcard(f"{prefix}login:u:x") == 200


# --- node registry ---------------------------------------------------------------------------

def registry(r, p, timeout: float = 15):
    return RedisNodeRegistry(r, p, timeout) if r else DbNodeRegistry(timeout)


def test_registry_heartbeat_alive_and_row(db, r, p):
    from lobby.matchmaking.models import Node

    reg = registry(r, p)
    now = time.time()
    assert reg.alive(now) == [] and not reg.available(now)
    reg.heartbeat(node("a", players=10))
    reg.heartbeat(node("b", draining=True))
    assert [(n.node_id, n.players, n.draining) for n in reg.alive(now)] == [
        ("a", 10, False), ("b", 0, True)]
    assert reg.available(now)
    assert set(Node.objects.filter(alive=True).values_list("node_id", flat=True)) == {"a", "b"}
    assert reg.alive(now + 16) == []  # past the timeout


def test_registry_reserve_least_loaded_with_limits(db, r, p):
    reg = registry(r, p)
    reg.heartbeat(node("a", capacity=10, players=6))
    reg.heartbeat(node("b", capacity=10, players=2, max_rooms=2, rooms=1))
    reg.heartbeat(node("c", capacity=100, draining=True))
    now = time.time()
    # b (0.2) takes the first; then b is at 0.6 with its 2 rooms used, so a (0.6) fits only 4
    assert reg.reserve([4, 4, 4, 1], now) == ["b", "a", None, None]
    loads = {n.node_id: (n.pending, n.pending_rooms) for n in reg.alive(now)}
    assert loads == {"a": (4, 1), "b": (4, 1), "c": (0, 0)}
    assert reg.reserve([1], now) == [None]  # pending persists between calls
    reg.heartbeat(node("a", capacity=10, players=0))  # a heartbeat resets pending
    assert reg.reserve([3], now) == ["a"]


def pending_of(reg, now: float, node_id: str = "a") -> tuple[int, int]:
    return next((n.pending, n.pending_rooms) for n in reg.alive(now) if n.node_id == node_id)


def test_registry_keeps_seats_placed_before_a_heartbeat(db, r, p):
    reg = registry(r, p)
    reg.heartbeat(node("a", capacity=10, boot="b1"))
    now = time.time()
    assert reg.reserve([4, 4], now) == ["a", "a"]
    # a heartbeat sent before those players joined: its counts do not include them
    reg.heartbeat(node("a", capacity=10, boot="b1"))
    assert pending_of(reg, now) == (8, 2)
    assert reg.reserve([4], now) == [None]  # 8 + 4 > 10: not placed over the capacity
    # 3 seated, one room open: those come off
    reg.heartbeat(node("a", capacity=10, players=3, rooms=1, boot="b1", seated=3, opened=1))
    assert pending_of(reg, now) == (5, 1)
    assert reg.reserve([2, 1], now) == ["a", None]  # 3 + 5 + 2 = 10
    reg.heartbeat(node("a", capacity=10, players=3, rooms=1, boot="b1", seated=3, opened=1))
    assert pending_of(reg, now) == (7, 2)  # nothing new seated: all kept
    # an older heartbeat arriving late changes nothing; more seated than placed: 0
    reg.heartbeat(node("a", capacity=10, players=1, rooms=1, boot="b1", seated=1, opened=1))
    assert pending_of(reg, now) == (7, 2)
    reg.heartbeat(node("a", capacity=10, players=10, rooms=5, boot="b1", seated=20, opened=9))
    assert pending_of(reg, now) == (0, 0)


def test_registry_pending_reset_by_a_restart_or_an_older_node(db, r, p):
    reg = registry(r, p)
    reg.heartbeat(node("a", capacity=10, boot="b1", seated=50, opened=10))
    now = time.time()
    assert reg.reserve([4], now) == ["a"]
    reg.heartbeat(node("a", capacity=10, boot="b2"))  # restarted: counts from 0 again
    assert pending_of(reg, now) == (0, 0)
    assert reg.reserve([4], now) == ["a"]
    reg.heartbeat(node("a", capacity=10, boot="b2", seated=1, opened=1))
    assert pending_of(reg, now) == (3, 0)
    reg.heartbeat(node("a", capacity=10))  # no counters (an older node): reset, as before
    assert pending_of(reg, now) == (0, 0)
    assert reg.reserve([4], now) == ["a"]
    reg.heartbeat(node("a", capacity=10, boot="b2", seated=1, opened=1))  # counters again
    assert pending_of(reg, now) == (0, 0)


def test_registry_pending_seats_expire_with_their_tokens(db, r, p, settings):
    settings.SEAT_TOKEN_TTL = 20
    window = 20 + PENDING_GRACE
    reg = registry(r, p, timeout=10_000)
    t0 = time.time()
    reg.heartbeat(node("a", boot="b1", now=t0))
    assert reg.reserve([4], t0 + 1) == ["a"]
    for dt in (5, window - 1, window + 0.5, window + 10):  # a new generation at window
        reg.heartbeat(node("a", boot="b1", now=t0 + dt))
        assert pending_of(reg, t0 + dt) == (4, 1)
    assert reg.reserve([3], t0 + window + 11) == ["a"]  # in the new generation
    beat = {"boot": "b1", "seated": 1, "opened": 1}
    reg.heartbeat(node("a", **beat, now=t0 + window + 12))
    assert pending_of(reg, t0) == (6, 1)  # what was seated came off the oldest first
    reg.heartbeat(node("a", **beat, now=t0 + 2 * window + 1))
    assert pending_of(reg, t0) == (3, 1)  # the first match's seats expired: 3 never taken
    reg.heartbeat(node("a", **beat, now=t0 + 3 * window))
    assert pending_of(reg, t0) == (3, 1)
    reg.heartbeat(node("a", **beat, now=t0 + 3 * window + 2))
    assert pending_of(reg, t0) == (0, 0)


def test_registry_backends_carry_pending_alike(db, r, p):
    """A random run of placements and heartbeats: each backend's counts are the rule's
    (`carry_pending`; Redis runs its Lua copy of it)."""
    import random

    rnd = random.Random(7)
    reg, window = registry(r, p, timeout=10_000), pending_window()
    # whole half-seconds: exact as floats and as the row's microseconds, so a generation
    # ending exactly at a heartbeat ends there on every backend
    t, boot, seated, opened = float(int(time.time())), "b1", 0, 0
    first = node("a", capacity=10**6, now=t, boot=boot)
    reg.heartbeat(first)
    kept = carry_pending(Pending(), first, window)
    for step in range(300):
        t += rnd.choice((0.5, 3.0, 9.0))
        if rnd.random() < 0.5:
            seats = rnd.randint(1, 4)
            assert reg.reserve([seats], t) == ["a"]
            kept = replace(kept, seats=kept.seats + seats, rooms=kept.rooms + 1)
            continue
        if rnd.random() < 0.03:
            boot, seated, opened = f"b{step}", 0, 0
        seated += rnd.randint(0, 3)
        opened += rnd.randint(0, 1)
        info = node("a", capacity=10**6, now=t, boot=boot, seated=seated, opened=opened)
        reg.heartbeat(info)
        kept = carry_pending(kept, info, window)
        assert pending_of(reg, t) == (kept.seats, kept.rooms), step


def test_redis_heartbeat_loses_no_concurrent_reservation(db, redis_url, prefix):
    reg = RedisNodeRegistry(connect(redis_url), prefix, timeout=15)
    reg.heartbeat(node("a", capacity=10**6, boot="b1"))
    stop = threading.Event()

    def beats() -> None:
        beat = RedisNodeRegistry(connect(redis_url), prefix, timeout=15)
        while not stop.is_set():
            beat.heartbeat(node("a", capacity=10**6, boot="b1"))

    # the Redis side only: the durable row is another thread's SQLite write
    with ThreadPoolExecutor(1) as pool, mock.patch("lobby.shared.nodes.upsert_row"):
        running = pool.submit(beats)
        placed = sum(reg.reserve([1], time.time()) == ["a"] for _ in range(300))
        stop.set()
        running.result()
    assert placed == 300 and pending_of(reg, time.time()) == (300, 300)


def test_registry_dead_after_timeout(db, r, p):
    reg = registry(r, p, timeout=15)
    now = time.time()
    reg.heartbeat(node("a", now=now))
    reg.heartbeat(node("b", now=now - 10))
    assert reg.dead(["a", "b"], now) == []
    assert reg.dead(["a", "b"], now + 6) == ["b"]
    assert sorted(reg.dead(["a", "b"], now + 16)) == ["a", "b"]


def test_redis_registry_survives_lost_data_without_false_deaths(db, redis_url, prefix):
    r = connect(redis_url)
    reg = RedisNodeRegistry(r, prefix, timeout=15)
    now = time.time()
    reg.heartbeat(node("a", now=now - 20))  # heard long ago: dead...
    assert reg.dead(["a"], now) == ["a"]
    for key in r.scan_iter(match=prefix + "*"):  # ...but Redis restarted, empty
        r.delete(key)
    assert reg.dead(["a"], now) == []  # nobody is declared dead for one timeout
    assert reg.dead(["a"], now + 10) == []
    assert reg.dead(["a"], now + 16) == ["a"]


def test_redis_registry_keys_expire(db, redis_url, prefix):
    r = connect(redis_url)
    reg = RedisNodeRegistry(r, prefix, timeout=0.25)
    reg.heartbeat(node("a"))
    assert 0 < r.pttl(f"{prefix}node:a") <= 1000  # KEY_TTL_FACTOR x timeout
    time.sleep(1.1)
    assert not r.exists(f"{prefix}node:a")
    assert reg.reserve([1], time.time()) == [None]
    assert not r.sismember(f"{prefix}nodes", "a")  # the index forgets it on the next pick


def _reserve_in_process(url: str, prefix: str, n: int) -> list:
    reg = RedisNodeRegistry(connect(url), prefix, timeout=15)
    return [reg.reserve([2], time.time())[0] for _ in range(n)]


def test_redis_reserve_never_overfills_across_processes(db, redis_url, prefix):
    import multiprocessing

    reg = RedisNodeRegistry(connect(redis_url), prefix, timeout=15)
    reg.heartbeat(node("a", capacity=40))
    reg.heartbeat(node("b", capacity=60))
    ctx = multiprocessing.get_context("fork")
    with ctx.Pool(4) as pool:
        results = pool.starmap(_reserve_in_process, [(redis_url, prefix, 30)] * 4)
    placed = Counter(c for chunk in results for c in chunk)
    assert placed == {"a": 20, "b": 30, None: 70}  # 2 seats each: exactly full, never over
    pending = {n.node_id: n.pending for n in reg.alive(time.time())}
    assert pending == {"a": 40, "b": 60}


# --- matcher pass gate ----------------------------------------------------------------------

def test_gate_throttles_and_records(db, r, p):
    gate = RedisPassGate(r, p, 0.5) if r else DbPassGate(0.5)
    now = time.time()
    assert gate.due(now)
    with gate.hold(now) as held:
        assert held
    assert gate.last_run() == pytest.approx(now) and not gate.due(now + 0.2)
    with gate.hold(now + 0.2) as held:
        assert not held
    with gate.hold(now + 0.2, force=True) as held:
        assert held
    with pytest.raises(RuntimeError), gate.hold(now + 1) as held:  # a failed pass...
        raise RuntimeError
    assert gate.last_run() == pytest.approx(now + 0.2)  # ...records nothing
    assert gate.due(now + 1)


def test_redis_gate_one_holder_across_threads(transactional_db, redis_url, prefix):
    from django.db import connection

    gate = RedisPassGate(connect(redis_url), prefix, 0.0)
    inside, most, passes = [0], [0], [0]
    lock = threading.Lock()
    barrier = threading.Barrier(6)

    def three_passes(_: int) -> int:
        """Try until this thread has run 3 passes (others may hold the gate meanwhile)."""
        done, deadline = 0, time.monotonic() + 10
        barrier.wait(timeout=5)
        while done < 3 and time.monotonic() < deadline:
            with gate.hold(time.time(), force=True) as held:
                if held:
                    with lock:
                        inside[0] += 1
                        most[0] = max(most[0], inside[0])
                        passes[0] += 1
                    time.sleep(0.002)
                    with lock:
                        inside[0] -= 1
                    done += 1
        connection.close()  # this thread's database connection
        return done

    with ThreadPoolExecutor(6) as pool:
        assert list(pool.map(three_passes, range(6))) == [3] * 6
    assert most[0] == 1 and passes[0] == 18  # never two holders at once


def test_redis_gate_releases_only_its_own_lock(db, redis_url, prefix):
    r = connect(redis_url)
    gate = RedisPassGate(r, prefix, 0.0)
    with gate.hold(time.time()) as held:
        assert held
        r.set(f"{prefix}matcher:lock", "someone-else")  # ours expired, another took it
    assert r.get(f"{prefix}matcher:lock") == "someone-else"


# --- reconnection ------------------------------------------------------------------------

def test_redis_client_reconnects_after_client_kill(db, redis_url, prefix, killer):
    r = connect(redis_url)
    store = RedisNonces(r, prefix)
    assert store.claim("node-1", "a", time.time())
    victim = r.client_id()  # the pooled connection the next command reuses
    assert killer.client_kill_filter(_id=victim) == 1
    assert store.claim("node-1", "b", time.time())  # no error: reconnected by itself
    assert r.client_id() != victim
    assert not store.claim("node-1", "a", time.time())


def test_redis_restart_clear_error_then_back(db, own_redis):
    r = connect(own_redis.url)
    store = RedisNonces(r, "t:")
    assert store.claim("n", "a", time.time())
    own_redis.stop()
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        store.claim("n", "b", time.time())
    # a clear error, not a hang: at worst the client's own timeouts (every attempt refused
    # at once here; each bounded by SOCKET_TIMEOUT)
    assert time.monotonic() - started < (RETRIES + 1) * SOCKET_TIMEOUT + 1
    own_redis.start()
    assert store.claim("n", "b", time.time())  # the same client works again
    assert store.claim("n", "a", time.time())  # the server lost its data (no persistence)
