"""Presence, as the lobby reads it: where a player is playing, and players per node.

Default (database): a player is "present" on the node of their active seat, from the
match's creation until its result (seated, not necessarily connected). With Redis the
nodes publish who is actually in their rooms (key names in `shared_keys`, which both import),
with a TTL of a few publish intervals, so a killed node's players vanish by themselves.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod

import redis

from shared_keys import presence_keys


class Presence(ABC):
    @abstractmethod
    def where(self, user_id: int) -> dict | None:
        """`{"node_id", "match_id", "connected"}` (connected: None when unknown), or None."""

    @abstractmethod
    def online(self) -> dict[str, int]:
        """Players per node id."""


class DbPresence(Presence):
    def where(self, user_id: int) -> dict | None:
        from lobby.matchmaking.models import MatchPlayer

        row = (MatchPlayer.objects.filter(user_id=user_id, active=True, match__node__isnull=False)
               .values_list("match__node__node_id", "match_id").first())
        return row and {"node_id": row[0], "match_id": row[1], "connected": None}

    def online(self) -> dict[str, int]:
        from django.db.models import Count

        from lobby.matchmaking.models import MatchPlayer

        rows = (MatchPlayer.objects.filter(active=True, match__node__isnull=False)
                .values("match__node__node_id").annotate(n=Count("id")))
        return {r["match__node__node_id"]: r["n"] for r in rows}


class RedisPresence(Presence):
    def __init__(self, r: redis.Redis, prefix: str):
        self.r, self.keys = r, presence_keys(prefix)

    def where(self, user_id: int) -> dict | None:
        raw = self.r.get(self.keys.user(user_id))
        return json.loads(raw) if raw else None

    def online(self) -> dict[str, int]:
        ids = sorted(self.r.smembers(self.keys.nodes))
        with self.r.pipeline(transaction=False) as p:
            for node_id in ids:
                p.hlen(self.keys.node(node_id))
            counts = p.execute()
        return {node_id: n for node_id, n in zip(ids, counts, strict=True) if n}
