"""The lobby's shared state: what every worker process (and host) must see alike.

One small interface per piece (docs/scale-out.md), each with a database default and a
Redis implementation; `state()` is the only place that chooses, from `REDIS_URL`:

| piece | interface | default | with `REDIS_URL` |
| --- | --- | --- | --- |
| replay nonces of node requests | `NonceStore` | `SeenNonce` rows | `SET NX PX` keys |
| login failure counters, new guests per address | `LoginLimiter` | `LoginFailure` rows | sorted sets with TTL |
| node registry, load, reservations | `NodeRegistry` | `Node` rows | hashes + a Lua pick |
| matcher pass lock and throttle | `PassGate` | `MatcherState` row lock | `SET NX` lock + time key |
| presence (who plays where) | `Presence` | active seats | what the nodes publish |
| events for the browsers' streams | `bus.Bus` (`bus.bus()`: async, apart) | in process | streams + pub/sub |

Tickets, matches, seats, results and ratings always stay in the database: Redis holds
nothing that cannot be lost.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from django.conf import settings
from django.core.signals import setting_changed

from .gate import DbPassGate, PassGate, RedisPassGate
from .nodes import DbNodeRegistry, NodeInfo, NodeRegistry, RedisNodeRegistry
from .nonces import DbNonces, NonceStore, RedisNonces
from .presence import DbPresence, Presence, RedisPresence
from .ratelimit import DbLoginLimiter, LoginLimiter, RedisLoginLimiter

__all__ = ["SharedState", "build", "state", "reset", "NodeInfo", "NonceStore", "LoginLimiter",
           "NodeRegistry", "PassGate", "Presence"]


@dataclass(frozen=True)
class SharedState:
    backend: str  # "database" or "redis"
    nonces: NonceStore
    logins: LoginLimiter
    nodes: NodeRegistry
    gate: PassGate
    presence: Presence
    redis: object | None = None  # the client, when backend == "redis"
    guests: LoginLimiter | None = None  # new guests per address (GUEST_MAX_PER_ADDRESS)


def build(redis_url: str, prefix: str) -> SharedState:
    """Every implementation from the settings: the database without `redis_url`."""
    logins = (settings.LOGIN_MAX_FAILURES, settings.LOGIN_FAILURE_WINDOW)
    guests = (settings.GUEST_MAX_PER_ADDRESS, settings.GUEST_WINDOW, "guest")
    if not redis_url:
        return SharedState("database", DbNonces(), DbLoginLimiter(*logins),
                           DbNodeRegistry(settings.NODE_TIMEOUT),
                           DbPassGate(settings.MATCHER_INTERVAL), DbPresence(),
                           guests=DbLoginLimiter(*guests))
    from .client import connect

    r = connect(redis_url)
    return SharedState("redis", RedisNonces(r, prefix), RedisLoginLimiter(r, prefix, *logins),
                       RedisNodeRegistry(r, prefix, settings.NODE_TIMEOUT),
                       RedisPassGate(r, prefix, settings.MATCHER_INTERVAL),
                       RedisPresence(r, prefix), r,
                       guests=RedisLoginLimiter(r, prefix, *guests))


_state: SharedState | None = None
_lock = threading.Lock()


def state() -> SharedState:
    """This process's shared state, built on first use (after the fork, in a gunicorn
    worker: each worker has its own Redis connection pool)."""
    global _state
    if _state is None:
        with _lock:
            if _state is None:
                _state = build(settings.REDIS_URL, settings.REDIS_PREFIX)
    return _state


def reset() -> None:
    """Forget the built state (tests; `override_settings` of a setting it reads)."""
    global _state
    if _state is not None and _state.redis is not None:
        _state.redis.close()
    _state = None


def _on_setting_changed(setting: str, **kwargs) -> None:
    if setting in {"REDIS_URL", "REDIS_PREFIX", "NODE_TIMEOUT", "MATCHER_INTERVAL",
                   "LOGIN_MAX_FAILURES", "LOGIN_FAILURE_WINDOW", "GUEST_MAX_PER_ADDRESS",
                   "GUEST_WINDOW"}:
        reset()


setting_changed.connect(_on_setting_changed)
