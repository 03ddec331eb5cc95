"""Input logs and replays: a seed plus the log of what the room fed the game reproduce
the match exactly (state and results), for any registered game; `verify` re-derives a
match's result from its replay file (engine/recording.py) to check a posted one.

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
from typing import TYPE_CHECKING, Any

from engine.game import Entities, Game, GameDef, PlayerResult
from engine.registry import Registry, registry

if TYPE_CHECKING:
    from engine.recording import Replay

MAX_VERIFY_TICKS = 1 << 19   # verify() refuses longer logs unless told (3.6 h at 40 Hz)


class ReplayError(Exception):
    """The log does not fit the game it is replayed on (a join got another id, ...), or a
    replay file is not valid (engine.recording.load_replay)."""


class ReplayTruncated(ReplayError):
    """The replay stops before the match's end (its size bound): no result to re-derive."""


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
    submit = game.submit
    while True:
        while i < n and records[i][0] == game.tick:
            rec = records[i]
            if rec[1] == "input":   # nearly every record: no call to _apply
                submit(rec[2], rec[3], rec[4])
            else:
                _apply(game, rec)
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


# --- verification ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verified:
    """A match re-derived from its replay."""

    game: str
    mode: str
    ticks: int
    over: bool
    end_reason: str
    results: list[PlayerResult]
    players: list[dict]   # the results in the node's posted form (`result_players`)


def result_players(gdef: GameDef, results: list[PlayerResult]) -> list[dict]:
    """Results as a node posts them (docs/protocol.md, the result's `players`)."""
    names = tuple(c.name for c in gdef.results)
    return [{"user_id": r.user_id, "name": r.name, "score": r.score, "placement": r.placement,
             "bot": r.bot, "stats": dict(zip(names, r.stats, strict=False))} for r in results]


def verify(replay: Replay, *, max_ticks: int = MAX_VERIFY_TICKS) -> Verified:
    """Re-run the match of `replay` (from `engine.recording.load_replay`) and give its
    result. Raises `ReplayTruncated` for a truncated replay, `ReplayError` when the log
    is longer than `max_ticks` or does not fit the game (the game raised, a join got
    another id, the match ended before the log did, ...)."""
    if replay.truncated:
        raise ReplayTruncated(f"the replay stops at tick {replay.end_tick} of {replay.ticks}")
    check_length(replay, max_ticks)
    gdef = replay.gdef
    game: Game | None = None
    try:
        game = gdef.game(replay.config, replay.seed)
        if game.tick != replay.start:
            raise ReplayError(f"the replay starts at tick {replay.start}, a new match at "
                              f"{game.tick}: only a recording from the start can be verified")
        run(game, replay.log)
    except ReplayError:
        raise
    except Exception as e:   # a log the game cannot take
        at = getattr(game, "tick", 0)
        raise ReplayError(f"the game failed on this replay at tick {at}: {e!r}") from None
    return verified(replay, game)


def check_length(replay: Replay, max_ticks: int) -> None:
    """ReplayError if re-running `replay` takes more than `max_ticks` steps."""
    if replay.end_tick - replay.start > max_ticks:
        raise ReplayError(f"{replay.end_tick - replay.start} ticks, above {max_ticks}")


def verified(replay: Replay, game: Game) -> Verified:
    """The result of `game`, just run through the whole log of `replay` (ReplayError if
    it ended before the log did)."""
    if game.tick != replay.end_tick:
        raise ReplayError(f"the match ended at tick {game.tick}, the replay says {replay.end_tick}")
    results = game.results()
    return Verified(replay.game, replay.mode, game.tick, game.over, game.end_reason, results,
                    result_players(replay.gdef, results))


def compare(verified: Verified, posted: dict) -> list[str]:
    """How a posted result (the node's: `game`, `mode`, `status`, `reason`, `ticks`,
    `players`) differs from the re-derived one: [] when it matches."""
    diffs = []
    for key, want in (("game", verified.game), ("mode", verified.mode), ("ticks", verified.ticks)):
        if posted.get(key) != want:
            diffs.append(f"{key}: posted {posted.get(key)!r}, replay {want!r}")
    status = posted.get("status")
    if status == "finished":
        if not verified.over:
            diffs.append("status: posted finished, the replayed match is not over")
        elif posted.get("reason") != verified.end_reason:
            diffs.append(f"reason: posted {posted.get('reason')!r}, replay {verified.end_reason!r}")
    elif verified.over:
        diffs.append(f"status: posted {status!r}, the replayed match is over")
    players = posted.get("players")
    if not isinstance(players, list) or len(players) != len(verified.players):
        diffs.append(f"players: posted {len(players) if isinstance(players, list) else players!r}"
                     f", replay {len(verified.players)}")
    else:
        for i, (got, want) in enumerate(zip(players, verified.players, strict=True)):
            if got != want:
                diffs.append(f"players[{i}]: posted {got!r}, replay {want!r}")
    return diffs
