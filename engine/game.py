"""The `Game` interface: what a room drives, one instance per match.

The room feeds it joins, leaves, inputs and ticks; it returns state, events and, at the
end, results. No I/O and no clock: time is the tick count.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any

# An entity is a tuple of ints (and, for players, the name string last), kind first.
Entities = dict[int, tuple]
Event = list


@dataclass(frozen=True, slots=True)
class PlayerInput:
    """One validated input message (docs/protocol.md, "Input")."""

    seq: int
    mx: int
    my: int
    aim: int
    buttons: int


@dataclass(frozen=True, slots=True)
class PlayerResult:
    player_id: int
    user_id: int
    name: str
    score: int
    kills: int
    deaths: int
    placement: int
    bot: bool

    def row(self) -> list:
        """The `match_end` results row of docs/protocol.md."""
        return [self.player_id, self.user_id, self.name, self.score, self.kills,
                self.deaths, self.placement, self.bot]


class Game(ABC):
    """A deterministic, fixed-step game. Subclasses: `engine.arena.Arena`."""

    tick: int = 0

    @abstractmethod
    def __init__(self, config: Any, seed: int): ...

    @abstractmethod
    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        """Add a player; returns its entity id. Raises `GameFull` when no seat is left."""

    @abstractmethod
    def leave(self, player_id: int) -> None:
        """Remove a player for good (unknown ids are ignored)."""

    @abstractmethod
    def set_connected(self, player_id: int, connected: bool) -> None:
        """Mark a player's connection state (shown to others; a disconnected player stands still)."""

    @abstractmethod
    def submit(self, player_id: int, raw: PlayerInput) -> bool:
        """Validate and queue one input for the next tick. False if rejected or ignored."""

    @abstractmethod
    def step(self) -> None:
        """Advance one tick: apply queued inputs (and bots'), simulate, record events."""

    @abstractmethod
    def entities(self) -> Entities:
        """The current state, in the entity format of docs/protocol.md."""

    @abstractmethod
    def drain_events(self) -> list[Event]:
        """Events since the last call, in the format of docs/protocol.md."""

    @property
    @abstractmethod
    def clock(self) -> int:
        """Ticks left in the match."""

    @property
    @abstractmethod
    def over(self) -> bool: ...

    @property
    @abstractmethod
    def end_reason(self) -> str:
        """"score", "time" or "" while running."""

    @abstractmethod
    def results(self) -> list[PlayerResult]:
        """Per-player results ordered by placement (valid at any time; final when over)."""

    @abstractmethod
    def client_config(self) -> dict:
        """The `welcome.config` map of docs/protocol.md."""


class GameFull(Exception):
    """No seat left in this game."""
