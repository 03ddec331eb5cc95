"""The lobby's Redis client: one connection pool per process, short timeouts, retries.

A call that cannot reach Redis raises `redis.exceptions.ConnectionError` or `TimeoutError`
after `RETRIES` quick reconnection attempts; `lobby.shared.middleware` turns that into a
503. A connection killed under the client (`CLIENT KILL`, a Redis restart) is replaced on
the next call: the retry reconnects, so callers never see a dead pooled connection.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from redis.retry import Retry

SOCKET_TIMEOUT = 2.0   # seconds per command and per connection attempt
RETRIES = 3            # reconnection attempts per command, 20, 40, 80 ms apart
RETRY_ERRORS = (RedisConnectionError, RedisTimeoutError, ConnectionResetError)


def connect(url: str) -> redis.Redis:
    """A sync client from `REDIS_URL` (`redis://host:port/db`, `rediss://`, `unix://`)."""
    return redis.Redis.from_url(
        url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT, socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), RETRIES),
        retry_on_error=list(RETRY_ERRORS), health_check_interval=30)
