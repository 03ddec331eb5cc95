"""Counters and mergeable histograms, cheap enough to record every frame of 1,000 bots.

A `Histogram` keeps counts in logarithmic buckets (about 1% wide), so the workers'
histograms merge by adding counts and a percentile is exact to about 1%; the maximum is
kept exactly. Everything here is plain data that pickles across processes.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

_SCALE = 100.0  # buckets per e-fold: bucket width is about 1%
_FLOOR = 1e-6   # values are seconds; everything at or under 1 us shares bucket 0
_LOG_FLOOR = math.log(_FLOOR)
_log = math.log  # record() runs for every frame of every bot


class Histogram:
    """Positive durations in seconds, log-bucketed."""

    __slots__ = ("buckets", "count", "total", "max")

    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.total = 0.0
        self.max = 0.0

    def record(self, seconds: float) -> None:
        key = int((_log(seconds) - _LOG_FLOOR) * _SCALE) if seconds > _FLOOR else 0
        self.buckets[key] += 1
        self.count += 1
        self.total += seconds
        if seconds > self.max:
            self.max = seconds

    def record_many(self, values: list[float]) -> None:
        """`record` each of `values` (what a bot collected since its last flush). The
        bucket keys are counted by `Counter.update` in C: a `Counter` item assignment in
        Python goes through its `__delitem__`-bearing slot, about ten times dearer than
        a dict's."""
        if not values:
            return
        log_floor, scale = _LOG_FLOOR, _SCALE
        self.buckets.update([int((_log(s) - log_floor) * scale) if s > _FLOOR else 0
                             for s in values])
        self.count += len(values)
        self.total += sum(values)
        top = max(values)
        if top > self.max:
            self.max = top

    def merge(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.total += other.total
        self.max = max(self.max, other.max)

    def percentile(self, q: float) -> float:
        """Value at quantile `q` (0..1): the middle of the bucket holding that rank."""
        if not self.count:
            return 0.0
        rank = max(1, math.ceil(q * self.count))
        seen = 0
        for key in sorted(self.buckets):
            seen += self.buckets[key]
            if seen >= rank:
                value = _FLOOR * math.exp((key + 0.5) / _SCALE) if key else _FLOOR
                return min(value, self.max)
        return self.max

    def summary(self, unit: float = 1e-3) -> dict:
        """{count, mean, p50, p95, p99, max} in `unit` (milliseconds by default)."""
        if not self.count:
            return {"count": 0, "mean": None, "p50": None, "p95": None, "p99": None, "max": None}
        return {
            "count": self.count,
            "mean": round(self.total / self.count / unit, 3),
            "p50": round(self.percentile(0.50) / unit, 3),
            "p95": round(self.percentile(0.95) / unit, 3),
            "p99": round(self.percentile(0.99) / unit, 3),
            "max": round(self.max / unit, 3),
        }

    def __getstate__(self):
        return (dict(self.buckets), self.count, self.total, self.max)

    def __setstate__(self, state) -> None:
        buckets, self.count, self.total, self.max = state
        self.buckets = Counter(buckets)


#: Histograms every group keeps (name -> what it measures; seconds).
HISTOGRAMS = (
    "time_to_seat",     # POST /api/queue -> first state frame
    "queue_wait",       # POST /api/queue -> the lobby says "matched"
    "join_to_state",    # connection opened -> first state frame
    "input_ack",        # input seq S sent -> first patch whose own `ack` >= S
    "state_interval",   # time between two consecutive state frames of one connection
    "rtt",              # ping -> pong
    "lobby_request",    # any lobby HTTP request
    "requeue_wait",     # match_end -> the lobby accepts the next POST /api/queue
    "bot_loop_lag",     # how late a worker's event loop runs a 50 ms timer (bot overload)
    "move_gap",         # last state frame on a node that sent `moved` -> first on the new one
)


@dataclass
class Group:
    """Everything measured for one class of bots ("normal" or "slow") in one process."""

    hist: dict[str, Histogram] = field(default_factory=lambda: {n: Histogram() for n in HISTOGRAMS})
    counters: Counter[str] = field(default_factory=Counter)
    #: how connections ended: "1000", "4020", "abnormal", "timeout", ...
    closes: Counter[str] = field(default_factory=Counter)
    #: failures: each is also an error for the target "zero errors"
    errors: Counter[str] = field(default_factory=Counter)
    #: effective patch rates (patches/s) announced by welcome.config, with how many times
    patch_rates: Counter[float] = field(default_factory=Counter)

    def take(self) -> Group:
        """What was measured since the last take; this group starts again from zero."""
        taken = Group(self.hist, self.counters, self.closes, self.errors, self.patch_rates)
        self.hist = {n: Histogram() for n in HISTOGRAMS}
        self.counters, self.closes, self.errors = Counter(), Counter(), Counter()
        self.patch_rates = Counter()
        return taken

    def merge(self, other: Group) -> None:
        for name, h in other.hist.items():
            self.hist.setdefault(name, Histogram()).merge(h)
        self.counters.update(other.counters)
        self.closes.update(other.closes)
        self.errors.update(other.errors)
        self.patch_rates.update(other.patch_rates)
