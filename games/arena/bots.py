"""The Arena's fill bots: a simple AI that produces the same input values a human sends.

The Arena asks each bot's brain for an input every `bot_think_ticks` ticks and feeds it
through the same rules and queue as a human's. All randomness comes from the
game's RNG, drawn in player order, so bots replay exactly like everything else.

Behaviour: heal when hurt, otherwise fight the nearest enemy in sight (aim with some
error, keep a middle distance, strafe), otherwise go for the nearest score pickup or
the nearest enemy. A feeler probes the way ahead and turns around walls; a bot that
stops moving picks a new direction for a while.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from games.arena.game import Arena

FEELER = 700          # 1/10 units: how far ahead a bot looks for walls
KEEP_NEAR, KEEP_FAR = 2500, 3800   # preferred fighting distance band (1/10 units)
TURNS = (0.6, -0.6, 1.2, -1.2, 1.8, -1.8, 2.5, -2.5)   # radians tried around a wall


class BotBrain:
    __slots__ = ("pid", "side", "last_x", "last_y", "stuck", "detour")

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.side = 1            # preferred way round an obstacle, and strafe direction
        self.last_x = self.last_y = -1
        self.stuck = 0
        self.detour = 0          # thinks left walking in a fixed escape direction

    def think(self, arena: Arena, me) -> tuple[int, int, int, int]:
        """(mx, my, aim, buttons), unclamped (the Arena clamps as for a human)."""
        rng = arena.rng
        c = arena.config
        x, y = me.x, me.y

        # nearest living enemy
        enemy = None
        best = 1 << 62
        for o in arena.players_view():
            if o is me or not o.alive:
                continue
            dx, dy = o.x - x, o.y - y
            d2 = dx * dx + dy * dy
            if d2 < best:
                enemy, best = o, d2
        fire_range = c.bot_fire_range * 10
        visible = (enemy is not None and best <= fire_range * fire_range
                   and arena.line_clear(x, y, enemy.x, enemy.y))

        # where to go
        goal = None
        if me.hp * 5 <= c.max_hp * 2:   # at 40% or less: look for a heal
            goal = _nearest(arena, x, y, 2)
        if goal is None and not visible:
            goal = _nearest(arena, x, y, 1)
            if goal is None and enemy is not None:
                goal = (enemy.x, enemy.y)
        heading: float | None = None
        if goal is not None:
            heading = math.atan2(goal[1] - y, goal[0] - x)
        elif visible:
            dist = math.sqrt(best)
            to_enemy = math.atan2(enemy.y - y, enemy.x - x)
            if rng.chance(1, 8):
                self.side = -self.side
            if dist > KEEP_FAR:
                heading = to_enemy + 0.5 * self.side
            elif dist < KEEP_NEAR:
                heading = to_enemy + math.pi - 0.5 * self.side
            else:
                heading = to_enemy + 1.5 * self.side

        # stuck against something: walk a random way for a few thinks
        if abs(x - self.last_x) + abs(y - self.last_y) < arena.step_len and heading is not None:
            self.stuck += 1
        else:
            self.stuck = 0
        self.last_x, self.last_y = x, y
        if self.stuck >= 3:
            self.stuck = 0
            self.side = -self.side
            self.detour = 4 + rng.below(6)
        if self.detour > 0 and heading is not None:
            self.detour -= 1
            heading += 1.6 * self.side
        if heading is not None:
            heading = self._steer(arena, x, y, heading)

        # aim and fire
        if visible:
            aim = math.atan2(enemy.y - y, enemy.x - x)
            err = rng.between(-c.bot_aim_error, c.bot_aim_error)
            aim_mrad = round(aim * 1000) + err
            fire = 1
        else:
            aim_mrad = round((heading if heading is not None else me.aim / 1000) * 1000)
            fire = 0
        if heading is None:
            mx = my = 0
        else:
            mx, my = round(math.cos(heading) * 100), round(math.sin(heading) * 100)
        return mx, my, aim_mrad, fire

    def _steer(self, arena: Arena, x: int, y: int, heading: float) -> float:
        """The first heading near the wanted one whose feeler is free of walls."""
        if _free(arena, x, y, heading):
            return heading
        for turn in TURNS:
            h = heading + turn * self.side
            if _free(arena, x, y, h):
                return h
        return heading


def _free(arena: Arena, x: int, y: int, heading: float) -> bool:
    bx = x + round(math.cos(heading) * FEELER)
    by = y + round(math.sin(heading) * FEELER)
    return arena.line_clear(x, y, bx, by)


def _nearest(arena: Arena, x: int, y: int, sort: int) -> tuple[int, int] | None:
    best, where = 1 << 62, None
    for s in arena.pickups_view():
        if s.sort != sort:
            continue
        dx, dy = s.x - x, s.y - y
        d2 = dx * dx + dy * dy
        if d2 < best:
            best, where = d2, (s.x, s.y)
    return where
