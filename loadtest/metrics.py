"""What the load test reads from the servers: a node's Prometheus `/metrics` and, for
processes on this machine, CPU and memory from `/proc/<pid>`.

Metric names (game_server/metrics.py): `arena_tick_seconds` (histogram),
`arena_tick_overruns_total`, `arena_rooms`, `arena_players{transport}`, `arena_seats`,
`arena_queue_drops_total`, `arena_connections_closed_total{code}`, and the standard
`process_cpu_seconds_total` / `process_resident_memory_bytes` when the node exposes them
(otherwise `--watch-pid node=PID` reads the same from /proc).
"""

from __future__ import annotations

import math
import os
import re
import time
import urllib.request
from dataclasses import dataclass, field

TICK_HISTOGRAM = "arena_tick_seconds"
_LINE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
SCRAPE_TIMEOUT = 2.0
MAX_METRICS_BYTES = 4 * 1024 * 1024


def parse_prometheus(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    """name -> [(labels, value)] of a Prometheus text exposition; comments are skipped."""
    out: dict[str, list[tuple[dict[str, str], float]]] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = _LINE.match(line)
        if not m:
            continue
        try:
            value = float(m.group(3))
        except ValueError:
            continue
        labels = dict(_LABEL.findall(m.group(2) or ""))
        out.setdefault(m.group(1), []).append((labels, value))
    return out


@dataclass
class NodeSample:
    """One scrape of one node, reduced to what the report uses."""

    t: float
    tick_buckets: list[tuple[float, float]] = field(default_factory=list)  # (le, cumulative)
    tick_count: float = 0.0
    tick_sum: float = 0.0
    overruns: float | None = None
    rooms: float | None = None
    players: float | None = None
    seats: float | None = None
    queue_drops: float | None = None
    cpu_seconds: float | None = None
    rss_bytes: float | None = None
    closed_by_code: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_text(cls, t: float, text: str) -> NodeSample:
        m = parse_prometheus(text)

        def one(name: str) -> float | None:
            samples = m.get(name)
            return sum(v for _, v in samples) if samples else None

        buckets = sorted((math.inf if labels.get("le") == "+Inf" else float(labels["le"]), v)
                         for labels, v in m.get(TICK_HISTOGRAM + "_bucket", []) if "le" in labels)
        return cls(
            t=t, tick_buckets=buckets,
            tick_count=one(TICK_HISTOGRAM + "_count") or 0.0,
            tick_sum=one(TICK_HISTOGRAM + "_sum") or 0.0,
            overruns=one("arena_tick_overruns_total"), rooms=one("arena_rooms"),
            players=one("arena_players"), seats=one("arena_seats"),
            queue_drops=one("arena_queue_drops_total"),
            cpu_seconds=one("process_cpu_seconds_total"),
            rss_bytes=one("process_resident_memory_bytes"),
            closed_by_code={labels.get("code", "?"): v
                            for labels, v in m.get("arena_connections_closed_total", [])},
        )


def scrape(url: str, timeout: float = SCRAPE_TIMEOUT) -> NodeSample | None:
    """One sample, or None if the node did not answer (counted by the caller)."""
    t = time.monotonic()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (checked host)
            text = response.read(MAX_METRICS_BYTES).decode("utf-8", "replace")
    except (OSError, ValueError):
        return None
    return NodeSample.from_text(t, text)


def histogram_quantile(q: float, buckets: list[tuple[float, float]]) -> tuple[float, float] | None:
    """(estimate, bucket upper bound) of quantile `q` from cumulative buckets, like
    Prometheus' histogram_quantile (linear inside the bucket). None without samples."""
    if not buckets or buckets[-1][1] <= 0:
        return None
    total = buckets[-1][1]
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in buckets:
        if count >= rank:
            if math.isinf(le):
                return prev_le, math.inf
            inside = count - prev_count
            fraction = (rank - prev_count) / inside if inside > 0 else 1.0
            return prev_le + (le - prev_le) * fraction, le
        prev_le, prev_count = le, count
    return prev_le, math.inf


def bucket_diff(later: NodeSample, earlier: NodeSample | None) -> list[tuple[float, float]]:
    """The tick histogram of the interval between two scrapes."""
    if earlier is None or len(earlier.tick_buckets) != len(later.tick_buckets):
        return later.tick_buckets
    return [(le, c - c0) for (le, c), (_, c0) in zip(later.tick_buckets, earlier.tick_buckets, strict=True)]


# --- processes on this machine -----------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def proc_usage(pid: int) -> tuple[float, int] | None:
    """(CPU seconds used so far, resident bytes) of a local process, or None if gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        with open(f"/proc/{pid}/statm") as f:
            rss_pages = int(f.read().split()[1])
    except (OSError, IndexError, ValueError):
        return None
    if fields[0] in ("Z", "X"):  # exited, not yet reaped
        return None
    # fields[0] is field 3 (state): utime is field 14, stime field 15
    cpu = (int(fields[11]) + int(fields[12])) / _TICKS
    return cpu, rss_pages * _PAGE


def tree_pids(pid: int) -> list[int]:
    """`pid` and its descendants (gunicorn/runserver workers count as the lobby)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        children.setdefault(ppid, []).append(int(entry))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, ()))
    return out


class ProcessWatch:
    """CPU % and RSS of a named process tree, sampled by the caller once a second."""

    def __init__(self, name: str, pid: int):
        self.name = name
        self.pid = pid
        self._last: tuple[float, float] | None = None  # (time, cpu seconds)
        self._cpu_by_pid: dict[int, float] = {}

    def sample(self) -> dict | None:
        now = time.monotonic()
        cpu_total, rss_total, alive = 0.0, 0, False
        for pid in tree_pids(self.pid):
            usage = proc_usage(pid)
            if usage is None:
                continue
            alive = True
            self._cpu_by_pid[pid] = usage[0]
            rss_total += usage[1]
        if not alive:
            return None
        cpu_total = sum(self._cpu_by_pid.values())  # exited children keep their last figure
        out = {"rss_mb": round(rss_total / 2**20, 1), "cpu_seconds": round(cpu_total, 2)}
        if self._last is not None and now > self._last[0]:
            out["cpu_percent"] = round(100 * (cpu_total - self._last[1]) / (now - self._last[0]), 1)
        self._last = (now, cpu_total)
        return out
