"""What a bot plays: the game's own `Brain` (engine/game.py) when the registry has one for
the game `welcome.config` names, else `GenericBrain`, which needs only the schema.

A brain may set `active = False` while the game ignores its player's inputs (say, a
dead player): the bot then waits for no ack for them. Without the attribute a brain is
active whenever the bot's own entity is in the state.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

from engine.registry import RegistryError, UnknownGame, registry


class Brain(Protocol):
    def think(self, tick: int, entities: dict[int, Any]) -> tuple[int, ...]: ...


def _schema(config: dict) -> dict:
    schema = config.get("schema")
    return schema if isinstance(schema, dict) else {}


def _kinds(config: dict) -> list[dict]:
    kinds = _schema(config).get("entities")
    return [k for k in kinds if isinstance(k, dict)] if isinstance(kinds, list) else []


def _index(kind: dict, name: Any) -> int | None:
    """Index in the entity list (the kind is index 0) of field `name`, or None."""
    fields = kind.get("fields")
    if isinstance(name, str) and isinstance(fields, list) and name in fields:
        return 1 + fields.index(name)
    return None


def ack_indices(config: dict) -> dict[int, int]:
    """Entity kind -> index of its `ack` field, for the kinds that declare one."""
    out = {}
    for kind in _kinds(config):
        index = _index(kind, kind.get("ack"))
        if index is not None and isinstance(kind.get("kind"), int):
            out[kind["kind"]] = index
    return out


def position_indices(config: dict) -> dict[int, tuple[int, int]]:
    """Entity kind -> indices of its first two `interpolate` fields (its position)."""
    out = {}
    for kind in _kinds(config):
        interpolate = kind.get("interpolate")
        if not isinstance(interpolate, list) or len(interpolate) < 2:
            continue
        ix, iy = _index(kind, interpolate[0]), _index(kind, interpolate[1])
        if ix is not None and iy is not None and isinstance(kind.get("kind"), int):
            out[kind["kind"]] = (ix, iy)
    return out


def input_ranges(config: dict) -> list[tuple[int, int, bool]]:
    """(lo, hi, wrap) of each input field, in wire order."""
    inputs = _schema(config).get("inputs")
    out = []
    for spec in inputs if isinstance(inputs, list) else ():
        lo, hi = (spec.get("lo"), spec.get("hi")) if isinstance(spec, dict) else (None, None)
        if not (type(lo) is int and type(hi) is int and lo <= hi):
            lo = hi = 0
        out.append((lo, hi, bool(spec.get("wrap")) if isinstance(spec, dict) else False))
    return out


class GenericBrain:
    """For a game without a brain: a random walk of every input value within its range
    (each step at most an eighth of the range, wrapped or held at the ends), jumping to
    fresh random values when the bot's own position (its kind's first two `interpolate`
    fields) has not moved for a second (stuck at a wall)."""

    def __init__(self, config: dict, player_id: int, seed: int):
        self.player_id = player_id
        self.rng = random.Random(seed)
        self.ranges = input_ranges(config)
        self.steps = [max(1, (hi - lo) // 8) for lo, hi, _ in self.ranges]
        self.positions = position_indices(config)
        sim_hz = config.get("sim_hz")
        self.stuck_ticks = sim_hz if type(sim_hz) is int and sim_hz > 0 else 30
        self.values = self._fresh()
        self.seen: tuple = (None, -1 << 62)   # (position, tick) of the last check
        self.active = True

    def _fresh(self) -> list[int]:
        return [self.rng.randint(lo, hi) for lo, hi, _ in self.ranges]

    def think(self, tick: int, entities: dict) -> tuple[int, ...]:
        me = entities.get(self.player_id)
        self.active = me is not None
        at = self.positions.get(me[0]) if me is not None else None
        if at is not None and tick - self.seen[1] >= self.stuck_ticks:
            pos = (me[at[0]], me[at[1]])
            if pos == self.seen[0]:
                self.values = self._fresh()
            self.seen = (pos, tick)
        rng = self.rng
        values = self.values
        for i, (lo, hi, wrap) in enumerate(self.ranges):
            v = values[i] + rng.randint(-self.steps[i], self.steps[i])
            if v < lo or v > hi:
                v = lo + (v - lo) % (hi - lo + 1) if wrap else min(hi, max(lo, v))
            values[i] = v
        return tuple(values)


def make_brain(config: dict, player_id: int, seed: int) -> tuple[Brain, bool]:
    """The brain for the game `config["game"]` names: (brain, True) from the game's
    `GameDef.bot`, or (GenericBrain, False) when this process's registry has no such game
    or the game declares no brain."""
    factory = None
    name = config.get("game")
    if isinstance(name, str):
        try:
            factory = registry().game(name).bot
        except (UnknownGame, RegistryError):
            factory = None
    if factory is None:
        return GenericBrain(config, player_id, seed), False
    return factory(config, player_id, seed), True
