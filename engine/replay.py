"""Input logs and replays: a seed plus the log of what the room fed the game reproduce
the match exactly (state and results), for any registered game.

A log is a list of records, each a tuple whose first element is the tick at which the
call happened (`game.tick` before the following `step()`):

    (tick, "join", user_id, name, bot, player_id)   # player_id: what join() returned
    (tick, "leave", player_id)
    (tick, "connected", player_id, connected)
    (tick, "input", player_id, seq, values)         # submit() as the room called it

plus `end_tick`, the tick the game had reached when the log was closed. `to_rows` /
`from_rows` turn a log into plain lists (msgpack or JSON friendly) and back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from engine.game import Entities, Game, GameDef, PlayerResult
from engine.registry import Registry, registry


class ReplayError(Exception):
    """The log does not fit the game it is replayed on (a join got another id, ...)."""


@dataclass
class InputLog:
    records: list[tuple] = field(default_factory=list)
    end_tick: int = 0

    def to_rows(self) -> list:
        rows: list[list] = []
        for rec in self.records:
            if rec[1] == "input":
                rows.append([rec[0], "input", rec[2], rec[3], list(rec[4])])
            else:
                rows.append(list(rec))
        return [self.end_tick, rows]

    @classmethod
    def from_rows(cls, data: list) -> InputLog:
        end_tick, rows = data
        records: list[tuple] = []
        for row in rows:
            if row[1] == "input":
                records.append((row[0], "input", row[2], row[3], tuple(row[4])))
            else:
                records.append(tuple(row))
        return cls(records, end_tick)


class Recorder:
    """Wraps a game and logs every call that changes it. Use it where you would use the
    game; other attributes (entities, results, over, ...) pass through."""

    def __init__(self, game: Game) -> None:
        self.game = game
        self.log = InputLog(end_tick=game.tick)

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        tick = self.game.tick
        pid = self.game.join(user_id, name, bot=bot)   # GameFull: nothing to log
        self.log.records.append((tick, "join", user_id, name, bot, pid))
        return pid

    def leave(self, player_id: int) -> None:
        self.log.records.append((self.game.tick, "leave", player_id))
        self.game.leave(player_id)

    def set_connected(self, player_id: int, connected: bool) -> None:
        self.log.records.append((self.game.tick, "connected", player_id, connected))
        self.game.set_connected(player_id, connected)

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        self.log.records.append((self.game.tick, "input", player_id, seq, tuple(values)))
        return self.game.submit(player_id, seq, values)

    def step(self) -> None:
        self.game.step()
        self.log.end_tick = self.game.tick

    def __getattr__(self, name: str) -> Any:
        return getattr(self.game, name)


def replay(mode: str, seed: int, log: InputLog, config: Any = None, *,
           game: GameDef | None = None, games: Registry | None = None,
           ) -> tuple[Entities, list[PlayerResult]]:
    """Run a new match of `mode` from `seed` through `log`; return its final entities and
    results. The game is the mode's in `games` (default: the process registry) unless
    `game` is given; `config` defaults to the mode's (pass the one the match ran with when
    the host overrode fields)."""
    if game is None:
        game, _ = (games or registry()).mode(mode)
    if config is None:
        config = game.modes[mode].config
    return run(game.game(config, seed), log)


def run(game: Game, log: InputLog) -> tuple[Entities, list[PlayerResult]]:
    """Drive a fresh `game` through `log` (what `replay` does once it has built the game)."""
    records = log.records
    i, n = 0, len(records)
    while True:
        while i < n and records[i][0] == game.tick:
            _apply(game, records[i])
            i += 1
        if i < n and records[i][0] < game.tick:
            raise ReplayError(f"record {i} is out of tick order")
        if game.tick >= log.end_tick or game.over:
            break
        game.step()
        game.drain_events()
    if i < n:
        raise ReplayError(f"{n - i} records after the end of the game")
    return game.entities(), game.results()


def _apply(game: Game, rec: tuple) -> None:
    kind = rec[1]
    if kind == "input":
        game.submit(rec[2], rec[3], tuple(rec[4]))
    elif kind == "join":
        _, _, user_id, name, bot, pid = rec
        got = game.join(user_id, name, bot=bot)
        if got != pid:
            raise ReplayError(f"join at tick {rec[0]} gave id {got}, the log says {pid}")
    elif kind == "leave":
        game.leave(rec[2])
    elif kind == "connected":
        game.set_connected(rec[2], rec[3])
    else:
        raise ReplayError(f"unknown record {kind!r}")
