"""The Arena's wire-state bot brain (the `Brain` of engine/game.py): what a load-test bot
decides each input slot from the entities it decoded, without the game's code.

It moves in one of eight directions (or stands) for 0.4..1.8 s, aims at the nearest alive
player and fires when one is close; with nobody in sight it sweeps its aim and fires now
and then. Field positions come from `welcome.config.schema`, so a reordered entity or
input spec still works; the names below are the Arena's.
"""

from __future__ import annotations

import math
import random

FLAG_ALIVE = 1
AIM_MAX = 3142          # milliradians
FIRE_RANGE = 6000       # wire units (world units * 10): fire at a target closer than this
AIM_EVERY = 4           # look for the nearest enemy every this many inputs (it is the cost)

# The Arena's wire layout, used when a welcome carries no schema (field 0 is the kind).
_PLAYER_KIND = 1
_PLAYER_FIELDS = ("x", "y", "aim", "hp", "score", "kills", "deaths", "flags", "ack", "name")
_INPUTS = ("mx", "my", "aim", "buttons")


def _player_layout(config: dict) -> tuple[int, int, int, int]:
    """(kind, index of x, of y, of flags) of the player entity, from the schema."""
    schema = config.get("schema") if isinstance(config, dict) else None
    kinds = schema.get("entities") if isinstance(schema, dict) else None
    for kind in kinds if isinstance(kinds, list) else ():
        if isinstance(kind, dict) and kind.get("name") == "player":
            fields = list(kind.get("fields") or ())
            if {"x", "y", "flags"} <= set(fields):
                return (kind.get("kind", _PLAYER_KIND), 1 + fields.index("x"),
                        1 + fields.index("y"), 1 + fields.index("flags"))
    return (_PLAYER_KIND, 1 + _PLAYER_FIELDS.index("x"), 1 + _PLAYER_FIELDS.index("y"),
            1 + _PLAYER_FIELDS.index("flags"))


def _input_names(config: dict) -> tuple[str, ...]:
    schema = config.get("schema") if isinstance(config, dict) else None
    inputs = schema.get("inputs") if isinstance(schema, dict) else None
    if isinstance(inputs, list) and inputs:
        return tuple(str(i.get("name")) if isinstance(i, dict) else "" for i in inputs)
    return _INPUTS


#: The eight directions a bot walks in (index k: angle k * pi / 4), as (mx, my).
_MOVES = tuple((round(100 * math.cos(k * math.pi / 4)), round(100 * math.sin(k * math.pi / 4)))
               for k in range(8))


class ArenaBrain:
    """One Arena bot's decisions. `active` is False while its player is dead: the Arena
    ignores a dead player's inputs, so the load test expects no ack for them.

    Every draw is `random()` scaled (uniform integers as `int(random() * n)`): the same
    distributions as `randint`/`randrange`, at a fraction of their cost (a load-test bot
    thinks 20 times a second)."""

    def __init__(self, config: dict, player_id: int, seed: int):
        self.player_id = player_id
        self.rng = random.Random(seed)
        self._random = self.rng.random
        sim_hz = config.get("sim_hz") if isinstance(config, dict) else None
        self.sim_hz = sim_hz if isinstance(sim_hz, int) and sim_hz > 0 else 30
        self.layout = _player_layout(config)
        self.kind, self.ix, self.iy, self.iflags = self.layout
        self.names = _input_names(config)
        self.standard = self.names == _INPUTS   # the spec in the Arena's own order
        self.move = (0, 0)
        self.next_turn = -1          # tick of the next change of direction
        self.aim = self.rng.randint(-AIM_MAX, AIM_MAX)
        self.calls = 0
        self.active = False

    def think(self, tick: int, entities: dict) -> tuple[int, ...]:
        rand = self._random
        me = entities.get(self.player_id)
        alive = self.active = me is not None and me[0] == self.kind and bool(me[self.iflags] & FLAG_ALIVE)
        if tick >= self.next_turn:
            self.move = (0, 0) if rand() < 0.1 else _MOVES[int(rand() * 8)]
            self.next_turn = tick + round((0.4 + 1.4 * rand()) * self.sim_hz)  # 0.4..1.8 s
        calls = self.calls
        self.calls = calls + 1
        target = self._nearest_enemy(me, entities) if alive and calls % AIM_EVERY == 0 else None
        if target is not None:
            dx, dy, dist2 = target
            aim = int(math.atan2(dy, dx) * 1000) + int(rand() * 241) - 120   # +-120
            fire = 1 if dist2 < FIRE_RANGE * FIRE_RANGE and rand() < 0.7 else 0
        else:
            aim = self.aim + int(rand() * 301) - 150   # +-150
            fire = 1 if rand() < 0.08 else 0
        if aim > AIM_MAX:
            aim -= 2 * AIM_MAX
        elif aim < -AIM_MAX:
            aim += 2 * AIM_MAX
        self.aim = aim
        mx, my = self.move
        if self.standard:
            return (mx, my, aim, fire)
        by_name = {"mx": mx, "my": my, "aim": aim, "buttons": fire, "fire": fire}
        return tuple(by_name.get(name, 0) for name in self.names)

    def _nearest_enemy(self, me, entities: dict) -> tuple[int, int, int] | None:
        x, y, own = me[self.ix], me[self.iy], self.player_id
        best = None
        best_d2 = 0
        for eid, ex, ey in _alive_players(entities, self.layout):
            if eid == own:
                continue
            dx, dy = ex - x, ey - y
            d2 = dx * dx + dy * dy
            if best is None or d2 < best_d2:
                best, best_d2 = (dx, dy, d2), d2
        return best


#: id(state) -> (the state, player layout, its alive players); the newest SIGHT_KEEP states
_sight: dict[int, tuple[dict, tuple, list]] = {}
SIGHT_KEEP = 256


def _alive_players(entities: dict, layout: tuple[int, int, int, int]) -> list[tuple[int, int, int]]:
    """(id, x, y) of every alive player of `entities`, in the state's order. Kept per state
    object: the load-test bots of a room hold the very same state (loadtest.shared), so the
    scan over every entity is done once per patch and room, not once per bot. A state is
    never changed in place once a bot holds it (a caller that did would need a new dict)."""
    hit = _sight.get(id(entities))
    if hit is not None and hit[0] is entities and hit[1] == layout:
        return hit[2]
    kind, ix, iy, iflags = layout
    players = [(eid, e[ix], e[iy]) for eid, e in entities.items()
               if e[0] == kind and e[iflags] & FLAG_ALIVE]
    if len(_sight) >= SIGHT_KEEP:
        del _sight[next(iter(_sight))]
    _sight[id(entities)] = (entities, layout, players)
    return players


def make_brain(welcome_config: dict, player_id: int, seed: int) -> ArenaBrain:
    """`GameDef.bot` of the Arena: called as `bot(welcome.config, welcome.player_id, seed)`."""
    return ArenaBrain(welcome_config, player_id, seed)
