"""The matcher pass gate: at most one pass at a time across workers and hosts, and at
most one every `MATCHER_INTERVAL` seconds.

`hold(now, force)` is a context manager yielding True when this process may run a pass
now, inside a database transaction that the pass uses for its writes; on a normal exit
the pass's time is recorded. It yields False when another process holds the gate or a
pass ran within the interval (unless `force`).
"""

from __future__ import annotations

import secrets
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager

import redis
from django.db import IntegrityError, transaction


class PassGate(ABC):
    def __init__(self, interval: float):
        self.interval = interval
        self.seen = 0.0  # the latest last_run this process read or wrote (it only grows)

    @abstractmethod
    def last_run(self) -> float:
        """Unix time of the last recorded pass (0.0 if none)."""

    def due(self, now: float) -> bool:
        """The cheap check before trying: is the last pass older than the interval? No
        read while the last pass this process knows of is that recent."""
        if 0 <= now - self.seen < self.interval:
            return False
        self.seen = max(self.seen, self.last_run())
        return not 0 <= now - self.seen < self.interval

    @abstractmethod
    def hold(self, now: float, *, force: bool = False) -> Iterator[bool]:
        """See the module docstring."""


class DbPassGate(PassGate):
    """The single `MatcherState` row: `SELECT ... FOR UPDATE SKIP LOCKED` on PostgreSQL
    (a worker that finds it taken skips its pass); SQLite serializes write transactions
    (`BEGIN IMMEDIATE`). `last_run` is written in the pass's own transaction."""

    def last_run(self) -> float:
        from lobby.matchmaking.models import MatcherState

        return MatcherState.objects.filter(pk=1).values_list("last_run", flat=True).first() or 0.0

    @staticmethod
    def _lock():
        from lobby.matchmaking.models import MatcherState

        lock = MatcherState.objects.select_for_update(skip_locked=True).filter(pk=1)
        state = lock.first()
        if state is None and not MatcherState.objects.filter(pk=1).exists():
            try:
                with transaction.atomic():
                    MatcherState.objects.create(pk=1)
            except IntegrityError:
                pass
            state = lock.first()
        return state

    @contextmanager
    def hold(self, now: float, *, force: bool = False) -> Iterator[bool]:
        with transaction.atomic():
            state = self._lock()
            if state is None or (not force and 0 <= now - state.last_run < self.interval):
                yield False
                return
            yield True
            state.last_run = now
            state.save(update_fields=["last_run"])
        self.seen = max(self.seen, now)


# Delete the lock only if it is still ours (it may have expired and been taken since).
RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisPassGate(PassGate):
    """`SET <prefix>matcher:lock <token> NX PX LOCK_TTL` (released by compare-and-delete),
    and `<prefix>matcher:last`, the last pass's time (expires after a day).

    The lock is taken before the database transaction and released after its commit, so
    the next pass sees this one's writes. Its TTL bounds how long a crashed worker can
    block passes; a pass longer than that could overlap the next one, which the ticket row
    locks and unique indexes still make safe.
    """

    LOCK_TTL = 30.0  # seconds

    def __init__(self, r: redis.Redis, prefix: str, interval: float):
        super().__init__(interval)
        self.r = r
        self.lock_key, self.last_key = f"{prefix}matcher:lock", f"{prefix}matcher:last"
        self._release = r.register_script(RELEASE_LUA)

    def last_run(self) -> float:
        return float(self.r.get(self.last_key) or 0.0)

    @contextmanager
    def hold(self, now: float, *, force: bool = False) -> Iterator[bool]:
        token = secrets.token_hex(8)
        if not self.r.set(self.lock_key, token, nx=True, px=int(self.LOCK_TTL * 1000)):
            yield False
            return
        try:
            if not force and not self.due(now):
                yield False
                return
            with transaction.atomic():
                yield True
            self.r.set(self.last_key, repr(now), ex=86400)
            self.seen = max(self.seen, now)
        finally:
            self._release(keys=[self.lock_key], args=[token])
