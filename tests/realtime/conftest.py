"""Fixtures of the live-lobby tests: real Redis (REDIS_TEST_URL, default
127.0.0.1:6379/0) with a key prefix per test, deleted afterwards; skipped without Redis,
failed under `CI=true` (`tests.services.need`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator

import pytest
import redis

from tests.services import need

REDIS_TEST_URL = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
_counter = itertools.count()


@pytest.fixture(scope="session")
def redis_url() -> str:
    try:
        redis.Redis.from_url(REDIS_TEST_URL, socket_timeout=1, socket_connect_timeout=1).ping()
        reason = None
    except (redis.RedisError, OSError) as e:
        reason = f"Redis at {REDIS_TEST_URL} unreachable: {e}"
    need(reason is None, reason or "")
    return REDIS_TEST_URL


@pytest.fixture
def redis_prefix(redis_url: str) -> Iterator[str]:
    prefix = f"test-rt-{os.getpid()}-{next(_counter)}:"
    yield prefix
    r = redis.Redis.from_url(redis_url)
    keys = list(r.scan_iter(match=prefix + "*", count=1000))
    if keys:
        r.delete(*keys)
