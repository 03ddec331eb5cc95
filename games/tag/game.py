"""Tag, for 2 to 8 players: whoever is "it" chases the others; a touch passes "it" on, then
nobody can be tagged for a moment (no tag-backs). You score one point per second you are
not "it". docs/games.md walks through this file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from engine.game import Game, GameFull, PlayerResult
from engine.rng import Rng

RUNNER = 1                      # the one entity kind
EV_TAG = 16                     # [tagger, tagged]; tagger 0: the game picked "it"
FLAG_BOT, FLAG_AWAY = 1, 2


@dataclass(frozen=True)
class TagConfig:
    mode: str = "tag"
    sim_hz: int = 30
    patch_hz: int = 15
    time_limit: int = 90        # seconds
    max_players: int = 8
    reconnect_window: int = 20  # seconds (the node enforces these two)
    max_input_rate: int = 60    # inputs per second
    width: int = 4000           # world units; a position is an int in these
    height: int = 2500
    radius: int = 60
    speed: int = 600            # units per second; "it" runs `it_boost` percent faster
    it_boost: int = 115
    no_tag_back: int = 2        # seconds after a tag in which nobody can be tagged


class _Runner:
    def __init__(self, pid: int, user_id: int, name: str, bot: bool, x: int, y: int):
        self.pid, self.user_id, self.name, self.bot = pid, user_id, name[:24], bot
        self.x, self.y, self.mx, self.my = x, y, 0, 0
        self.ack = self.free = self.tags = self.caught = 0
        self.away = False
        self.pending: tuple[int, int, int] | None = None   # (seq, mx, my) of the last input


class Tag(Game):
    def __init__(self, config: TagConfig, seed: int):
        self.config, self.rng, self.tick = config, Rng(seed), 0
        self.players: dict[int, _Runner] = {}
        self.gone: list[_Runner] = []
        self.it = 0                                    # the player who is "it" (0: nobody)
        self.immune = (0, 0)                           # (last tagger, no tags before this tick)
        self.events: list[list] = []
        self.next_id = 1
        self.end_tick = config.time_limit * config.sim_hz

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        c = self.config
        if self.over or len(self.players) >= c.max_players or self.next_id > 999:   # ids 1..999
            raise GameFull("no seat left")
        pid, self.next_id = self.next_id, self.next_id + 1
        x = c.radius + self.rng.below(c.width - 2 * c.radius)
        y = c.radius + self.rng.below(c.height - 2 * c.radius)
        self.players[pid] = _Runner(pid, 0 if bot else user_id, str(name), bot, x, y)
        return pid

    def leave(self, player_id: int) -> None:
        p = self.players.pop(player_id, None)
        if p is not None:
            self.gone.append(p)

    def set_connected(self, player_id: int, connected: bool) -> None:
        p = self.players.get(player_id)
        if p is not None:
            p.away, p.mx, p.my, p.pending = not connected, 0, 0, None

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        p = self.players.get(player_id)
        if p is None or p.bot or p.away or self.over or len(values) != 2:
            return False
        p.pending = (seq, values[0], values[1])
        return True

    def step(self) -> None:
        if self.over:
            return
        self.tick = t = self.tick + 1
        c = self.config
        here = [p for p in self.players.values() if not p.away]
        it = self.players.get(self.it)
        if (it is None or it.away) and len(here) >= 2:
            it = here[self.rng.below(len(here))]               # a new "it", by lot
            self.it = it.pid
            self.events.append([EV_TAG, 0, self.it])
        chasing = it is not None and not it.away
        for p in here:
            if p.bot and (t + p.pid) % 3 == 0:
                p.mx, p.my = self._bot_move(p, here)
            elif p.pending is not None:
                p.ack, p.mx, p.my = p.pending
                p.pending = None
            step = c.speed * (c.it_boost if p.pid == self.it else 100) / (100 * c.sim_hz)
            n = math.hypot(p.mx, p.my)
            if n:
                k = step / max(n, 100)           # full speed at length 100 or more
                p.x = min(max(p.x + round(p.mx * k), c.radius), c.width - c.radius)
                p.y = min(max(p.y + round(p.my * k), c.radius), c.height - c.radius)
            if chasing and p is not it:
                p.free += 1
        if chasing and t >= self.immune[1]:
            reach = (2 * c.radius) ** 2
            for p in here:
                if p is not it and (p.x - it.x) ** 2 + (p.y - it.y) ** 2 <= reach:
                    it.tags, p.caught = it.tags + 1, p.caught + 1
                    self.it, self.immune = p.pid, (it.pid, t + c.no_tag_back * c.sim_hz)
                    self.events.append([EV_TAG, it.pid, p.pid])
                    break

    def _bot_move(self, p: _Runner, here: list[_Runner]) -> tuple[int, int]:
        """Chase the nearest runner (the last tagger last), or run from "it" and the walls."""
        it, c = self.players.get(self.it), self.config
        if it is None or len(here) < 2:
            return 0, 0
        if p is it:
            o = min((o for o in here if o is not p), key=lambda o: (
                o.pid == self.immune[0], (o.x - p.x) ** 2 + (o.y - p.y) ** 2, o.pid))
            dx, dy = o.x - p.x, o.y - p.y
        else:
            dx = p.x - it.x + (c.width // 2 - p.x) // 4
            dy = p.y - it.y + (c.height // 2 - p.y) // 4
        a = math.atan2(dy, dx) + (self.rng.below(61) - 30) / 60   # a little wobble
        return round(100 * math.cos(a)), round(100 * math.sin(a))

    def entities(self) -> dict[int, tuple]:
        hz = self.config.sim_hz
        return {p.pid: (RUNNER, p.x, p.y, int(p.pid == self.it), p.free // hz,
                        FLAG_BOT * p.bot | FLAG_AWAY * p.away, p.ack, p.name)
                for p in self.players.values()}

    def drain_events(self) -> list[list]:
        events, self.events = self.events, []
        return events

    @property
    def clock(self) -> int:
        return max(0, self.end_tick - self.tick)

    @property
    def over(self) -> bool:
        return self.tick >= self.end_tick

    @property
    def end_reason(self) -> str:
        return "time" if self.over else ""

    def results(self) -> list[PlayerResult]:
        everyone = sorted([*self.players.values(), *self.gone], key=lambda p: (-p.free, p.pid))
        rows, place, hz = [], 0, self.config.sim_hz
        for i, p in enumerate(everyone):
            if i == 0 or p.free // hz != everyone[i - 1].free // hz:
                place = i + 1
            rows.append(PlayerResult(p.pid, p.user_id, p.name, p.free // hz, place, p.bot,
                                     (p.tags, p.caught)))
        return rows

    def client_config(self) -> dict:
        c = self.config
        return {"width": c.width, "height": c.height, "radius": c.radius, "speed": c.speed,
                "it_boost": c.it_boost, "no_tag_back": c.no_tag_back}
