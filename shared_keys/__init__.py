"""The Redis key layout that the lobby and the game nodes share.

The lobby and the nodes never import each other (they talk over HTTP, docs/lobby.md);
where both read or write the same Redis keys, the names are defined here, once, and both
import this package. Only stdlib: it must stay importable from either side.

Shared today: presence. Nodes write it (`game_server.shared_state.RedisPresence`), the
lobby reads it (`lobby.shared.presence.RedisPresence`). Keys that one side alone uses are
named beside their code (docs/scale-out.md lists them all).
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_PREFIX = "arena:"  # `REDIS_PREFIX` of both sides; every key starts with it


@dataclass(frozen=True)
class PresenceKeys:
    """Presence key names under one prefix."""

    prefix: str

    @property
    def nodes(self) -> str:      # set: node ids that published presence
        return f"{self.prefix}presence:nodes"

    @property
    def events(self) -> str:     # pub/sub channel: JSON events (seated, left, match_ended)
        return f"{self.prefix}events"

    def node(self, node_id: str) -> str:   # hash: user id -> JSON {"match_id", "connected"}
        return f"{self.prefix}presence:node:{node_id}"

    def user(self, user_id: int | str) -> str:  # string: JSON {"node_id", "match_id", "connected"}
        return f"{self.prefix}presence:user:{user_id}"


def presence_keys(prefix: str = DEFAULT_PREFIX) -> PresenceKeys:
    return PresenceKeys(prefix)
