"""The Game API: what a room drives (one `Game` per match) and what a game declares
(`define()` -> `GameDef`: its modes, entity kinds, events, input fields, result columns,
bot brain and browser module). docs/games.md is the tutorial; docs/engine.md the reference.

A game is pure and deterministic: no I/O, no clock (time is the tick count), randomness
only from `engine.rng.Rng`. The room feeds it joins, leaves, inputs and ticks; it returns
state, its own events and, at the end, results.
"""

from __future__ import annotations

import dataclasses
import re
import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from engine import snapshot as _snapshot

# An entity is a tuple: its kind, then its fields in `EntityKind.fields` order.
Entities = dict[int, tuple]
Event = list

NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,15}$")      # game and mode names
FIELD_RE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")      # entity/event/input/result names
ENTITY_KINDS = range(1, 128)
GAME_EVENT_CODES = range(16, 128)   # 1..15 are the room's (engine.codec.EV_*)
NAME_FIELD = "name"                 # the one str entity field
NAME_MAX = 24                       # characters of a "name" field
PLAYER_ID_MAX = 999                 # player ids are 1..999
CONFIG_FIELDS = ("sim_hz", "patch_hz", "time_limit", "max_players", "reconnect_window",
                 "max_input_rate")


class DefinitionError(ValueError):
    """A game's declarations break a rule of `define()` (or the registry's)."""


def _need(ok: bool, what: str) -> None:
    if not ok:
        raise DefinitionError(what)


def _field_name(name: Any, what: str) -> None:
    _need(type(name) is str and FIELD_RE.match(name) is not None,
          f"{what} name {name!r} must match {FIELD_RE.pattern}")


def _unique(names: Iterable, what: str) -> None:
    seen: set = set()
    for n in names:
        _need(n not in seen, f"duplicate {what} {n!r}")
        seen.add(n)


# --- declarations ---------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class EntityKind:
    """An entity kind: the fields after the kind, in wire order. All are ints except one
    named "name" (str, at most 24 chars). `interpolate`: int fields a client interpolates
    linearly between patches. `ack`: the field holding the seq of the last input applied."""

    kind: int
    name: str
    fields: tuple[str, ...]
    interpolate: tuple[str, ...] = ()
    ack: str | None = None

    def __post_init__(self) -> None:
        _need(type(self.kind) is int and self.kind in ENTITY_KINDS,
              f"entity kind {self.kind!r} must be in 1..127")
        _field_name(self.name, "entity")
        _need(isinstance(self.fields, tuple), f"entity {self.name}: fields must be a tuple")
        for f in self.fields:
            _field_name(f, f"entity {self.name} field")
        _unique(self.fields, f"field of entity {self.name}")
        for f in self.interpolate:
            _need(f in self.fields and f != NAME_FIELD,
                  f"entity {self.name}: interpolated {f!r} is not an int field")
        _need(self.ack is None or (self.ack in self.fields and self.ack != NAME_FIELD),
              f"entity {self.name}: ack {self.ack!r} is not an int field")

    def index(self, field_name: str) -> int:
        """The tuple index of a field (the kind is index 0)."""
        return 1 + self.fields.index(field_name)


@dataclass(frozen=True, slots=True)
class EventKind:
    """A game event `[code, *fields]`; codes 16..127 (1..15 are the room's)."""

    code: int
    name: str
    fields: tuple[str, ...]

    def __post_init__(self) -> None:
        _need(type(self.code) is int and self.code in GAME_EVENT_CODES,
              f"event {self.name!r}: code {self.code!r} must be in 16..127 (1..15 are the room's)")
        _field_name(self.name, "event")
        _need(isinstance(self.fields, tuple), f"event {self.name}: fields must be a tuple")
        for f in self.fields:
            _field_name(f, f"event {self.name} field")
        _unique(self.fields, f"field of event {self.name}")


@dataclass(frozen=True, slots=True)
class InputField:
    """One int of the input message. Out-of-range values are clamped into [lo, hi], or,
    when `wrap`, wrapped into it modulo (hi - lo + 1)."""

    name: str
    lo: int
    hi: int
    wrap: bool = False

    def __post_init__(self) -> None:
        _field_name(self.name, "input")
        _need(type(self.lo) is int and type(self.hi) is int and self.lo <= self.hi,
              f"input {self.name}: need int lo <= hi")
        _need(self.lo >= -(1 << 63) and self.hi < 1 << 63, f"input {self.name}: range beyond int64")


@dataclass(frozen=True, slots=True)
class ResultColumn:
    """A per-game stats column of the results (score and placement are common to all)."""

    name: str
    label: str

    def __post_init__(self) -> None:
        _field_name(self.name, "result column")
        _need(type(self.label) is str and 0 < len(self.label) <= 32,
              f"result column {self.name}: label must be 1..32 chars")


@dataclass(frozen=True, slots=True)
class Mode:
    """A way to play a game: its config and the players per match the matchmaker needs.
    `config` is a frozen dataclass with at least the fields of CONFIG_FIELDS."""

    name: str
    config: Any
    min_players: int
    max_players: int
    title: str = ""

    def __post_init__(self) -> None:
        _need(type(self.name) is str and NAME_RE.match(self.name) is not None,
              f"mode name {self.name!r} must match {NAME_RE.pattern}")
        _need(dataclasses.is_dataclass(self.config) and not isinstance(self.config, type),
              f"mode {self.name}: config must be a dataclass instance")
        for f in CONFIG_FIELDS:
            _need(type(getattr(self.config, f, None)) is int,
                  f"mode {self.name}: config needs an int {f!r}")
        _need(type(self.min_players) is int and type(self.max_players) is int
              and 1 <= self.min_players <= self.max_players <= self.config.max_players,
              f"mode {self.name}: need 1 <= min_players <= max_players <= config.max_players")


@dataclass(frozen=True, slots=True)
class PlayerResult:
    player_id: int
    user_id: int
    name: str
    score: int
    placement: int
    bot: bool
    stats: tuple[int, ...] = ()   # in the game's result-column order

    def row(self) -> list:
        """The `match_end` results row of docs/protocol.md."""
        return [self.player_id, self.user_id, self.name, self.score, self.placement, self.bot,
                *self.stats]


class Brain(Protocol):
    """A bot working on wire state (the load test's, optionally a game's fill bots)."""

    def think(self, tick: int, entities: dict[int, list | tuple]) -> tuple[int, ...]:
        """The next input's values, in input-spec order."""
        ...


# --- the game ---------------------------------------------------------------------------------

class Game(ABC):
    """A deterministic, fixed-step game; one instance per match."""

    tick: int = 0

    @abstractmethod
    def __init__(self, config: Any, seed: int): ...

    @abstractmethod
    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        """Add a player; returns its entity id (1..999). Raises `GameFull` when no seat is left.
        A bot (`bot=True`) is driven by the game itself inside `step()`."""

    @abstractmethod
    def leave(self, player_id: int) -> None:
        """Remove a player for good (unknown ids are ignored)."""

    @abstractmethod
    def set_connected(self, player_id: int, connected: bool) -> None:
        """Mark a player's connection state."""

    @abstractmethod
    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        """Queue one input for the next tick. `values` are already clamped to the input spec
        and `seq` already checked by the room (strictly increasing per connection); the game
        records `seq` as the player's ack when it applies the input. False if ignored."""

    @abstractmethod
    def step(self) -> None:
        """Advance one tick: apply queued inputs (and bots'), simulate, record events."""

    @abstractmethod
    def entities(self) -> Entities:
        """The current state: entity id -> (kind, *fields)."""

    @abstractmethod
    def drain_events(self) -> list[Event]:
        """The game's events since the last call (codes >= 16; never the room's)."""

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
        """Why the match ended ("score", "time", ...), "" while running."""

    @abstractmethod
    def results(self) -> list[PlayerResult]:
        """Per-player results ordered by placement (valid at any time; final when over)."""

    @abstractmethod
    def client_config(self) -> dict:
        """Game-specific keys of `welcome.config` (world size, walls...); the room adds its own."""

    # The snapshot hooks (engine/snapshot.py; docs/games.md, "Snapshots"). The defaults
    # write down the instance's whole object graph: every attribute, recursively, of
    # plain types and of plain classes from the game's own package, `engine.rng` and
    # the modules listed here.
    snapshot_modules: tuple[str, ...] = ()

    def snapshot_state(self) -> Any:
        """msgpack data holding everything `step()` and the reads depend on (entities,
        timers, RNG state, queued inputs, undrained events...)."""
        return _snapshot.encode_graph(self, _snapshot.allowed_modules(type(self)))

    @classmethod
    def restore_state(cls, state: Any) -> Game:
        """A game identical to the one whose `snapshot_state()` gave `state`. `state` has
        passed the checksum but comes from another process: check it, raise on anything
        wrong (the host turns any exception into `SnapshotError`)."""
        game = _snapshot.decode_graph(state, _snapshot.allowed_modules(cls))
        if type(game) is not cls:
            raise _snapshot.SnapshotError(f"the state is not a {cls.__qualname__}")
        return game


class GameFull(Exception):
    """No seat left in this game."""


# --- the definition -------------------------------------------------------------------------

BrainFactory = Callable[[dict, int, int], Brain]


@dataclass(frozen=True, eq=False)
class GameDef:
    """Everything the hosts need to know about one game. Build it with `define()`.
    Compared and hashed by identity (one per registered game)."""

    name: str
    title: str
    game: type[Game]
    modes: dict[str, Mode]
    entities: tuple[EntityKind, ...]
    events: tuple[EventKind, ...]
    inputs: tuple[InputField, ...]
    results: tuple[ResultColumn, ...]
    bot: BrainFactory | None
    browser: str
    _ranges: tuple[tuple[int, int, int], ...] = field(default=(), repr=False, compare=False)
    _in_range: Callable[[tuple], bool] = field(default=lambda values: False, repr=False,
                                               compare=False)

    def schema(self) -> dict:
        """The `welcome.config.schema` map of docs/protocol.md (arrays, string keys only)."""
        return {
            "entities": [{"kind": e.kind, "name": e.name, "fields": list(e.fields),
                          "interpolate": list(e.interpolate), "ack": e.ack} for e in self.entities],
            "events": [{"code": e.code, "name": e.name, "fields": list(e.fields)}
                       for e in self.events],
            "inputs": [{"name": i.name, "lo": i.lo, "hi": i.hi, "wrap": i.wrap} for i in self.inputs],
            "results": [{"name": r.name, "label": r.label} for r in self.results],
        }

    def clamp(self, values: Iterable[int]) -> tuple[int, ...]:
        """`values` (ints, one per input field: ValueError otherwise) brought into range.
        A node calls it for every input: values already in range take one C-level pass."""
        if type(values) is not tuple:
            values = tuple(values)
        if self._in_range(values):
            return values
        out = []
        for v, (lo, hi, period) in zip(values, self._ranges, strict=True):
            if v < lo or v > hi:
                v = (v - lo) % period + lo if period else (lo if v < lo else hi)
            out.append(v)
        return tuple(out)

    def in_range(self, values: tuple[int, ...]) -> bool:
        """Whether `values` is a tuple `clamp` would leave as it is (one int per input
        field, each in range)."""
        return self._in_range(values)

    def config(self, mode_name: str, **overrides: Any) -> Any:
        """The mode's config with `overrides` applied; keys the config lacks are ignored
        (a host sets the same knobs, e.g. reconnect_window, for every game)."""
        base = self.modes[mode_name].config
        have = {f.name for f in dataclasses.fields(base)}
        changes = {k: v for k, v in overrides.items() if k in have}
        return dataclasses.replace(base, **changes) if changes else base

    def new(self, mode_name: str, seed: int, **overrides: Any) -> Game:
        """A new match of `mode_name` (KeyError if the game has no such mode)."""
        return self.game(self.config(mode_name, **overrides), seed)

    def snapshot(self, game: Game, mode: str) -> bytes:
        """The whole state of `game` (a match of mode `mode`) as bytes (engine/snapshot.py)."""
        return _snapshot.dump(self, mode, game)

    def restore(self, data: bytes) -> Game:
        """The game `snapshot` wrote down (`SnapshotError` if `data` is not a valid
        snapshot of this game); `engine.snapshot.load` also gives the mode and tick."""
        return _snapshot.load(data, self).game

    def entity(self, name: str) -> EntityKind:
        return next(e for e in self.entities if e.name == name)

    def event(self, name: str) -> EventKind:
        return next(e for e in self.events if e.name == name)


def define(name: str, title: str, game: type[Game], modes: Iterable[Mode],
           entities: Iterable[EntityKind], events: Iterable[EventKind],
           inputs: Iterable[InputField], results: Iterable[ResultColumn],
           bot: BrainFactory | None = None, browser: str = "browser.js") -> GameDef:
    """Check a game's declarations and bundle them. `browser` is relative to the folder of
    the module that defines `game` (its existence is the client build's check, not this)."""
    _need(type(name) is str and NAME_RE.match(name) is not None,
          f"game name {name!r} must match {NAME_RE.pattern}")
    _need(type(title) is str and 0 < len(title) <= 64, f"game {name}: title must be 1..64 chars")
    _need(isinstance(game, type) and issubclass(game, Game), f"game {name}: not a Game subclass")
    modes, entities, events = tuple(modes), tuple(entities), tuple(events)
    inputs, results = tuple(inputs), tuple(results)
    for what, items, cls in (("mode", modes, Mode), ("entity", entities, EntityKind),
                             ("event", events, EventKind), ("input", inputs, InputField),
                             ("result column", results, ResultColumn)):
        _need(all(isinstance(i, cls) for i in items), f"game {name}: {what}s must be {cls.__name__}")
    _need(len(modes) > 0, f"game {name}: at least one mode")
    _need(len(entities) > 0, f"game {name}: at least one entity kind")
    _need(len(inputs) > 0, f"game {name}: at least one input field")
    _unique((m.name for m in modes), f"mode of game {name}")
    _unique((e.kind for e in entities), f"entity kind of game {name}")
    _unique((e.name for e in entities), f"entity name of game {name}")
    _unique((e.code for e in events), f"event code of game {name}")
    _unique((e.name for e in events), f"event name of game {name}")
    _unique((i.name for i in inputs), f"input of game {name}")
    _unique([r.name for r in results] + ["score", "placement"], f"result column of game {name}")
    _need(bot is None or callable(bot), f"game {name}: bot must be callable or None")
    path = Path(browser)
    if not path.is_absolute():
        module = sys.modules.get(game.__module__)
        where = getattr(module, "__file__", None)
        path = (Path(where).parent if where else Path.cwd()) / path
    ranges = tuple((i.lo, i.hi, (i.hi - i.lo + 1) if i.wrap else 0) for i in inputs)
    return GameDef(name, title, game, {m.name: m for m in modes}, entities, events, inputs,
                   results, bot, str(path), ranges, _range_check(inputs))


def _range_check(inputs: tuple[InputField, ...]) -> Callable[[tuple], bool]:
    """A function telling whether a tuple has one value per field, each in range: compiled
    from the (validated int) bounds, as namedtuple and dataclasses compile their methods,
    because a node runs it for every input (about 2x a generic loop)."""
    names = [f"v{i}" for i in range(len(inputs))]
    test = " and ".join(f"{f.lo} <= {v} <= {f.hi}" for f, v in zip(inputs, names, strict=True))
    src = (f"def in_range(values):\n    if len(values) != {len(inputs)}:\n        return False\n"
           f"    {', '.join(names)}, = values\n    return {test}\n")
    scope: dict[str, Any] = {}
    exec(src, scope)  # noqa: S102 (only ints and generated names go into the source)
    return scope["in_range"]
