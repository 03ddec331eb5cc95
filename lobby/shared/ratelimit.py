"""Login rate limit counters: failures per key (account, address) in a sliding window.

`LOGIN_MAX_FAILURES` failures within `LOGIN_FAILURE_WINDOW` seconds block the key.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from datetime import UTC, datetime

import redis
from django.db.models import Count


class LoginLimiter(ABC):
    def __init__(self, max_failures: int, window: float):
        self.max_failures, self.window = max_failures, window

    @abstractmethod
    def blocked(self, keys: list[str], now: float) -> bool:
        """True if any key has `max_failures` failures within the window."""

    @abstractmethod
    def record_failure(self, keys: list[str], now: float) -> None:
        """Count one failure against every key."""

    @abstractmethod
    def clear(self, key: str) -> None:
        """Forget a key's failures (a successful login clears its account)."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class DbLoginLimiter(LoginLimiter):
    """One `LoginFailure` row per failure and key; old rows deleted as new ones come."""

    def blocked(self, keys: list[str], now: float) -> bool:
        from lobby.accounts.models import LoginFailure

        counts = (LoginFailure.objects.filter(key__in=keys, at__gte=_dt(now - self.window))
                  .values("key").annotate(n=Count("id")))
        return any(row["n"] >= self.max_failures for row in counts)

    def record_failure(self, keys: list[str], now: float) -> None:
        from lobby.accounts.models import LoginFailure

        LoginFailure.objects.bulk_create([LoginFailure(key=k, at=_dt(now)) for k in keys])
        LoginFailure.objects.filter(at__lt=_dt(now - self.window)).delete()

    def clear(self, key: str) -> None:
        from lobby.accounts.models import LoginFailure

        LoginFailure.objects.filter(key=key).delete()


class RedisLoginLimiter(LoginLimiter):
    """A sorted set per key (`<prefix>login:<key>`): members are failures scored by time.

    Recording trims entries older than the window and sets the key's TTL to the window,
    so an idle key disappears by itself.
    """

    def __init__(self, r: redis.Redis, prefix: str, max_failures: int, window: float):
        super().__init__(max_failures, window)
        self.r, self.prefix = r, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}login:{key}"

    def blocked(self, keys: list[str], now: float) -> bool:
        with self.r.pipeline(transaction=False) as p:
            for k in keys:
                p.zcount(self._key(k), now - self.window, "+inf")
            return any(n >= self.max_failures for n in p.execute())

    def record_failure(self, keys: list[str], now: float) -> None:
        ttl = max(1, int(self.window) + 1)
        with self.r.pipeline(transaction=True) as p:
            for k in keys:
                key = self._key(k)
                p.zadd(key, {f"{now:.6f}:{secrets.token_hex(4)}": now})
                p.zremrangebyscore(key, "-inf", f"({now - self.window}")
                p.expire(key, ttl)
            p.execute()

    def clear(self, key: str) -> None:
        self.r.delete(self._key(key))
