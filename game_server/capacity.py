"""The node's own headroom, measured from its loop (docs/game_server.md, "Capacity").

Every `capacity_interval` seconds the node samples its process CPU time, the time its
rooms spent ticking and its overruns; smoothed over `capacity_window` seconds they give
its `load` (CPU share of one core), the part of it spent in ticks (the rest is I/O:
reading inputs, writing frames, HTTP), and the CPU one seated player costs (load /
players, the node's fixed cost included, so it errs on the safe side; with fewer than
`ESTIMATE_MIN_PLAYERS` the load is spread over that many). Against
`cpu_budget` (the share of one core the node may use) that says how many more players fit
(`room_for`, the `capacity` of the heartbeats: the lobby places only what fits) and
whether a new room may start (`accepts_room`). Rooms already running are never refused:
under overload the newest work is, and the rooms keep their rate.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable

from .metrics import Metrics

log = logging.getLogger(__name__)

REFUSAL_LOG_EVERY = 10.0   # seconds between two log lines about refused rooms
#: the cost per player is load / max(players, this): with few players the node's fixed cost
#: (idle loop, heartbeats, HTTP) would pass for the players' and leave no room for a match
ESTIMATE_MIN_PLAYERS = 100
OVERRUN_LIMIT = 0.05       # a node whose ticks overrun more than this is full...
OVERRUN_MIN_PLAYERS = 50   # ...once it holds this many (with fewer, skipped ticks say the
                           # machine is busy with something else, not that the node is full)


class Capacity:
    def __init__(self, *, budget: float, window: float, max_players: int, metrics: Metrics,
                 players: Callable[[], int], cpu: Callable[[], float] = time.process_time,
                 clock: Callable[[], float] = time.monotonic):
        self.budget = budget
        self.window = window
        self.max_players = max_players
        self.metrics = metrics
        self._players = players
        self._cpu = cpu
        self._clock = clock
        self.load = 0.0           # CPU share of one core, smoothed over `window`
        self.tick_share = 0.0     # the part of it spent ticking rooms
        self.overrun_share = 0.0  # skipped ticks / due ticks, smoothed
        self.per_player = 0.0     # CPU share per seated player (0: not measured yet)
        self._last = (clock(), cpu(), metrics.tick_seconds.total, metrics.ticks,
                      metrics.overruns)
        self._refused_since_log = 0
        self._last_log = -math.inf

    def sample(self) -> None:
        now, cpu = self._clock(), self._cpu()
        m = self.metrics
        t0, cpu0, tick0, ticks0, over0 = self._last
        dt = now - t0
        if dt <= 0:
            return
        self._last = (now, cpu, m.tick_seconds.total, m.ticks, m.overruns)
        a = min(1.0, dt / self.window)
        self.load += a * ((cpu - cpu0) / dt - self.load)
        self.tick_share += a * ((m.tick_seconds.total - tick0) / dt - self.tick_share)
        over, ran = m.overruns - over0, m.ticks - ticks0
        self.overrun_share += a * (over / max(1, over + ran) - self.overrun_share)
        players = self._players()
        if players:
            self.per_player = self.load / max(players, ESTIMATE_MIN_PLAYERS)

    @property
    def full(self) -> bool:
        return self.load >= self.budget or (self.overrun_share > OVERRUN_LIMIT
                                            and self._players() >= OVERRUN_MIN_PLAYERS)

    def room_for(self) -> int:
        """Players that still fit (the heartbeat's capacity is players + this)."""
        players = self._players()
        left = self.max_players - players
        if self.full:
            return 0
        if self.per_player > 0:
            left = min(left, int((self.budget - self.load) / self.per_player))
        return max(0, left)

    def accepts_room(self, seats: int) -> bool:
        """Whether a new room of `seats` players may start (counted and logged if not)."""
        if not self.full and (self.per_player <= 0
                              or self.load + seats * self.per_player <= self.budget):
            return True
        self.metrics.refused["capacity"] += 1
        self._refused_since_log += 1
        now = self._clock()
        if now - self._last_log >= REFUSAL_LOG_EVERY:
            log.warning("node full: %d new room(s) refused (load %.2f of budget %.2f cores, "
                        "%.3f ms CPU/s per player, overruns %.1f%%)", self._refused_since_log,
                        self.load, self.budget, 1e3 * self.per_player,
                        100 * self.overrun_share)
            self._refused_since_log = 0
            self._last_log = now
        return False

    def report(self) -> dict:
        """The heartbeat's and /health's `headroom`."""
        return {"load": round(self.load, 4), "budget": self.budget,
                "tick_share": round(self.tick_share, 4),
                "io_share": round(max(0.0, self.load - self.tick_share), 4),
                "cpu_ms_per_player_s": round(1e3 * self.per_player, 4),
                "overrun_share": round(self.overrun_share, 4),
                "room_for": self.room_for(), "accepting_rooms": not self.full}
