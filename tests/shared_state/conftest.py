"""Fixtures: real Redis at 127.0.0.1:6379 (REDIS_TEST_URL to change it), a key prefix per
test, deleted afterwards. Redis variants skip, with the reason, only if it is unreachable
(and fail under `CI=true`: `tests.services.need`)."""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest
import redis

from lobby.live import free_port
from tests.services import need

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
_counter = itertools.count()


def redis_reachable() -> str | None:
    """None if Redis answers PING, else why not."""
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=1, socket_connect_timeout=1).ping()
    except (redis.RedisError, OSError) as e:
        return f"Redis at {REDIS_TEST_URL} unreachable: {e}"
    return None


@pytest.fixture(scope="session")
def redis_url() -> str:
    reason = redis_reachable()
    need(reason is None, reason or "")
    return REDIS_TEST_URL


def delete_prefix(url: str, prefix: str) -> None:
    r = redis.Redis.from_url(url)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
    r.close()


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test only; its keys are deleted afterwards."""
    p = f"sstest:{os.getpid()}:{next(_counter)}:"
    yield p
    delete_prefix(redis_url, p)


@pytest.fixture
def killer(redis_url: str) -> Iterator[redis.Redis]:
    """Another connection, to `CLIENT KILL ID` the connections under test."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    yield r
    r.close()




class OwnRedis:
    """A throwaway redis-server of this test (no persistence), to stop and start again."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        subprocess.run(["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                        "--save", "", "--appendonly", "no", "--daemonize", "yes",
                        "--logfile", ""], check=True, timeout=10, capture_output=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                redis.Redis(port=self.port, socket_timeout=0.5).ping()
                return
            except (redis.RedisError, OSError):
                time.sleep(0.02)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        """SHUTDOWN NOSAVE, then wait until the port refuses connections."""
        subprocess.run(["redis-cli", "-p", str(self.port), "shutdown", "nosave"],
                       timeout=10, capture_output=True)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
            except OSError:
                return
            time.sleep(0.02)


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    need(shutil.which("redis-server"), "redis-server not installed")
    server = OwnRedis()
    server.start()
    yield server
    server.stop()
