"""Fixed-step clock arithmetic: which ticks are due, drift-free, with bounded catch-up.

Tick k is due at `start + k * dt`. The caller (a room's task) passes the loop's monotonic
time; the clock never reads a clock itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class FixedStep:
    start: float
    dt: float
    max_catch_up: int = 4
    #: ticks done so far
    ticks: int = 0
    #: ticks skipped because the caller fell more than `max_catch_up` steps behind
    overruns: int = 0

    def due(self, now: float) -> int:
        """How many steps to run now (at most `max_catch_up`). Steps beyond that are
        skipped and counted in `overruns`; the schedule itself never drifts."""
        # ticks that should have run by now; the epsilon keeps a wake-up exactly at a
        # deadline from rounding down (float division) and finding nothing due
        target = math.floor((now - self.start) / self.dt + 1e-9) + 1
        behind = target - self.ticks
        if behind <= 0:
            return 0
        if behind > self.max_catch_up:
            skipped = behind - self.max_catch_up
            self.overruns += skipped
            self.ticks += skipped
            behind = self.max_catch_up
        return behind

    def advance(self, steps: int = 1) -> None:
        self.ticks += steps

    def next_deadline(self) -> float:
        """Monotonic time at which the next tick is due."""
        return self.start + self.ticks * self.dt


def patch_every(sim_hz: int, patch_hz: int) -> int:
    """Simulation ticks per patch (broadcast); patch rate is rounded to a divisor of sim rate."""
    if sim_hz <= 0 or patch_hz <= 0:
        raise ValueError("rates must be positive")
    return max(1, round(sim_hz / patch_hz))
