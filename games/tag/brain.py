"""Tag's wire-state bot brain (engine.game.Brain), for the load test: it sees only what a
client sees (the entities and welcome.config.schema) and answers input values."""

from __future__ import annotations

import math
import random


class TagBrain:
    def __init__(self, config: dict, player_id: int, seed: int):
        self.me = player_id
        self.rng = random.Random(seed)
        fields = ["x", "y", "it", "score", "flags", "ack", "name"]
        for kind in (config.get("schema") or {}).get("entities", []):
            if kind.get("name") == "runner":
                self.kind, fields = kind["kind"], list(kind["fields"])
                break
        else:
            self.kind = 1
        self.ix, self.iy, self.iit = (1 + fields.index(f) for f in ("x", "y", "it"))
        self.wobble = 0.0

    def think(self, tick: int, entities: dict) -> tuple[int, ...]:
        """(mx, my): at the nearest runner when "it", else away from "it"."""
        me = entities.get(self.me)
        if me is None or me[0] != self.kind:
            return (0, 0)
        x, y = me[self.ix], me[self.iy]
        others = [e for eid, e in entities.items() if eid != self.me and e[0] == self.kind]
        if not others:
            return (0, 0)
        if me[self.iit]:
            o = min(others, key=lambda e: (e[self.ix] - x) ** 2 + (e[self.iy] - y) ** 2)
            dx, dy = o[self.ix] - x, o[self.iy] - y
        else:
            it = next((e for e in others if e[self.iit]), None)
            if it is None:
                return (0, 0)
            dx, dy = x - it[self.ix], y - it[self.iy]
        self.wobble = max(-1.0, min(1.0, self.wobble + self.rng.uniform(-0.3, 0.3)))
        a = math.atan2(dy, dx) + self.wobble
        return (round(100 * math.cos(a)), round(100 * math.sin(a)))


def make_brain(welcome_config: dict, player_id: int, seed: int) -> TagBrain:
    """`GameDef.bot` of Tag: called as `bot(welcome.config, welcome.player_id, seed)`."""
    return TagBrain(welcome_config, player_id, seed)
