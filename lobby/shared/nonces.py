"""Single-use nonces of signed node requests (docs/protocol.md: replay protection).

A nonce must be refused if seen within the replay window: twice the allowed clock skew
(`engine.auth.REQUEST_MAX_SKEW`), after which the timestamp check refuses it anyway.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from datetime import UTC, datetime, timedelta

import redis
from django.db import IntegrityError, transaction

from engine.auth import REQUEST_MAX_SKEW

WINDOW = 2 * REQUEST_MAX_SKEW  # seconds a nonce is remembered
PURGE_ODDS = 50                # DB: one claim in 50 deletes nonces older than WINDOW


class NonceStore(ABC):
    @abstractmethod
    def claim(self, node_id: str, nonce: str, now: float) -> bool:
        """True the first time (node_id, nonce) is seen within WINDOW, False on a replay."""


class DbNonces(NonceStore):
    """`SeenNonce` rows: the unique (node_id, nonce) constraint decides."""

    def claim(self, node_id: str, nonce: str, now: float) -> bool:
        from lobby.matchmaking.models import SeenNonce

        seen_at = datetime.fromtimestamp(now, tz=UTC)
        try:
            with transaction.atomic():
                SeenNonce.objects.create(node_id=node_id, nonce=nonce, seen_at=seen_at)
        except IntegrityError:
            return False
        if random.randrange(PURGE_ODDS) == 0:
            SeenNonce.objects.filter(seen_at__lt=seen_at - timedelta(seconds=WINDOW)).delete()
        return True


class RedisNonces(NonceStore):
    """`SET <prefix>nonce:<node>:<nonce> 1 NX EX WINDOW`: one atomic command, expires itself."""

    def __init__(self, r: redis.Redis, prefix: str, window: float = WINDOW):
        self.r, self.prefix, self.window_ms = r, prefix, int(window * 1000)

    def claim(self, node_id: str, nonce: str, now: float) -> bool:
        key = f"{self.prefix}nonce:{node_id}:{nonce}"
        return bool(self.r.set(key, "1", nx=True, px=self.window_ms))
