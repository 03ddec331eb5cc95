"""Rate limit counters: events per key in a sliding window, shared by every worker.

Two limiters use them (lobby/accounts/ratelimit.py): failed logins (namespace `login`:
per account and address pair, per account, per address, within `LOGIN_FAILURE_WINDOW`)
and new guests (namespace `guest`: per address, within `GUEST_WINDOW`). `max_failures`
is the default limit of `blocked`; callers with a limit per key read `counts`.
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from datetime import UTC, datetime

import redis
from django.db.models import Count


class LoginLimiter(ABC):
    def __init__(self, max_failures: int, window: float, namespace: str = "login"):
        self.max_failures, self.window, self.namespace = max_failures, window, namespace

    def blocked(self, keys: list[str], now: float) -> bool:
        """True if any key has `max_failures` failures within the window."""
        return any(n >= self.max_failures for n in self.counts(keys, now))

    @abstractmethod
    def counts(self, keys: list[str], now: float) -> list[int]:
        """Failures of each key within the window, in the order of `keys`."""

    @abstractmethod
    def record_failure(self, keys: list[str], now: float) -> None:
        """Count one failure against every key."""

    @abstractmethod
    def clear(self, key: str) -> None:
        """Forget a key's failures (a successful login clears its account)."""


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


class DbLoginLimiter(LoginLimiter):
    """One `LoginFailure` row per failure and key (`<namespace>/<key>`); old rows of the
    namespace deleted as new ones come."""

    def _db_key(self, key: str) -> str:
        return f"{self.namespace}/{key}"

    def counts(self, keys: list[str], now: float) -> list[int]:
        from lobby.accounts.models import LoginFailure

        db_keys = [self._db_key(k) for k in keys]
        rows = (LoginFailure.objects.filter(key__in=db_keys, at__gte=_dt(now - self.window))
                .values("key").annotate(n=Count("id")))
        found = {row["key"]: row["n"] for row in rows}
        return [found.get(k, 0) for k in db_keys]

    def record_failure(self, keys: list[str], now: float) -> None:
        from lobby.accounts.models import LoginFailure

        LoginFailure.objects.bulk_create([LoginFailure(key=self._db_key(k), at=_dt(now))
                                          for k in keys])
        LoginFailure.objects.filter(key__startswith=f"{self.namespace}/",
                                    at__lt=_dt(now - self.window)).delete()

    def clear(self, key: str) -> None:
        from lobby.accounts.models import LoginFailure

        LoginFailure.objects.filter(key=self._db_key(key)).delete()


class RedisLoginLimiter(LoginLimiter):
    """A sorted set per key (`<prefix>login:<key>`): members are failures scored by time.

    Recording trims entries older than the window and sets the key's TTL to the window,
    so an idle key disappears by itself.
    """

    def __init__(self, r: redis.Redis, prefix: str, max_failures: int, window: float,
                 namespace: str = "login"):
        super().__init__(max_failures, window, namespace)
        self.r, self.prefix = r, prefix

    def _key(self, key: str) -> str:
        return f"{self.prefix}{self.namespace}:{key}"

    def counts(self, keys: list[str], now: float) -> list[int]:
        with self.r.pipeline(transaction=False) as p:
            for k in keys:
                p.zcount(self._key(k), now - self.window, "+inf")
            return [int(n) for n in p.execute()]

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
