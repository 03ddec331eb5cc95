"""Node metrics: plain counters and one histogram, rendered in the Prometheus text format.

Counters are attributes incremented on the hot path (no locks, no labels lookups per
frame); gauges (rooms, players) are read from the node when `/metrics` is scraped.
"""

from __future__ import annotations

import os
import resource
from bisect import bisect_left
from collections import Counter
from collections.abc import Callable, Iterable

#: Tick duration buckets, seconds (upper bounds; +Inf is implicit).
TICK_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1)


class Histogram:
    __slots__ = ("bounds", "counts", "total", "count")

    def __init__(self, bounds: Iterable[float] = TICK_BUCKETS):
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)
        self.total = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value
        self.count += 1

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile `q` (coarse; for logs and the bench)."""
        if not self.count:
            return 0.0
        rank = q * self.count
        seen = 0
        for i, n in enumerate(self.counts):
            seen += n
            if seen >= rank:
                return self.bounds[i] if i < len(self.bounds) else float("inf")
        return float("inf")


class Metrics:
    """Everything the node counts. One instance per node."""

    def __init__(self) -> None:
        self.tick_seconds = Histogram()
        self.ticks = 0
        self.overruns = 0
        self.patches = 0
        self.frames_out = 0          # state frames written (one per client per patch)
        self.bytes_out = 0           # msgpack payload bytes of those frames
        self.queue_drops = 0         # state frames not written: the client's backlog was full
        self.inputs = 0
        self.rejected_inputs = 0
        self.connections = 0
        self.closed_by_code: Counter[int] = Counter()
        self.rooms_created = 0
        self.rooms_disposed = 0
        self.matches_finished = 0
        self.matches_aborted = 0
        self.replays_truncated = 0   # recordings that reached their size bound (still posted)
        # admission and transport limits (game_server/admission.py): refusals by limit name
        self.refused: Counter[str] = Counter()
        self.accept_errors = 0       # failed accept(2) calls (EMFILE...)
        # handoffs (game_server/handoff.py, drain.py)
        self.rooms_moved = 0          # rooms handed to another node (source side)
        self.players_moved = 0        # clients told `moved`
        self.handoffs_received = 0    # rooms taken over from another node (target side)
        self.handoffs_failed: Counter[str] = Counter()   # source side, by why: the room stayed
        self.handoffs_refused: Counter[str] = Counter()  # target side, by HTTP status
        self.handoff_seconds = Histogram((0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0))

    def render(self, gauges: Callable[[], dict]) -> str:
        """The Prometheus text exposition (version 0.0.4)."""
        g = gauges()
        out: list[str] = []

        def metric(name: str, kind: str, help_: str, samples: list[tuple[str, float]]) -> None:
            out.append(f"# HELP {name} {help_}")
            out.append(f"# TYPE {name} {kind}")
            for labels, value in samples:
                out.append(f"{name}{labels} {value}")

        metric("arena_rooms", "gauge", "Rooms on this node.", [("", g["rooms"])])
        metric("arena_players", "gauge", "Connected clients by transport (players and spectators).",
               [(f'{{transport="{t}"}}', n) for t, n in sorted(g["players_by_transport"].items())]
               or [('{transport="websocket"}', 0)])
        metric("arena_seats", "gauge", "Seats held, connected or within the reconnect window.",
               [("", g["seats"])])
        metric("arena_draining", "gauge", "1 while the node shuts down.", [("", int(g["draining"]))])
        metric("arena_outbox_pending", "gauge", "Results not yet acknowledged by the lobby.",
               [("", g["outbox_pending"])])
        cap = g.get("capacity")
        if cap is not None:  # game_server/capacity.py
            for name, key, help_ in (
                ("arena_capacity_load", "load", "CPU share of one core used, smoothed."),
                ("arena_capacity_budget", "budget", "CPU share of one core the node may use."),
                ("arena_capacity_tick_share", "tick_share", "CPU share spent ticking rooms."),
                ("arena_capacity_player_cpu_ms", "cpu_ms_per_player_s",
                 "CPU ms per second per seated player (the node's fixed cost included)."),
                ("arena_capacity_room_for", "room_for", "Players that still fit, measured."),
            ):
                metric(name, "gauge", help_, [("", cap[key])])
        if "boot" in g:  # the node's counters the lobby's placement uses (its heartbeats)
            metric("arena_boot_info", "gauge", "This node process's random id (heartbeat boot).",
                   [(f'{{boot="{g["boot"]}"}}', 1)])
            metric("arena_seated_total", "counter",
                   "Fresh player seats created for seat tokens (heartbeat seated_total).",
                   [("", g["seated_total"])])
            metric("arena_token_rooms_total", "counter",
                   "Rooms opened for seat tokens (heartbeat rooms_total).",
                   [("", g["rooms_total"])])
        h = self.tick_seconds
        samples = []
        cumulative = 0
        for bound, n in zip((*h.bounds, float("inf")), h.counts, strict=True):
            cumulative += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            samples.append((f'_bucket{{le="{le}"}}', cumulative))
        samples += [("_sum", h.total), ("_count", h.count)]
        out.append("# HELP arena_tick_seconds Duration of one tick (simulation step and patch).")
        out.append("# TYPE arena_tick_seconds histogram")
        out += [f"arena_tick_seconds{suffix} {value}" for suffix, value in samples]
        for name, help_, value in (
            ("arena_ticks_total", "Simulation ticks run.", self.ticks),
            ("arena_tick_overruns_total", "Ticks skipped because a room fell behind.", self.overruns),
            ("arena_patches_total", "State patches built.", self.patches),
            ("arena_frames_out_total", "State frames written to clients.", self.frames_out),
            ("arena_bytes_out_total", "Payload bytes of state frames written.", self.bytes_out),
            ("arena_queue_drops_total", "State frames dropped: client backlog full.", self.queue_drops),
            ("arena_inputs_total", "Input messages received.", self.inputs),
            ("arena_rejected_inputs_total", "Inputs ignored (stale seq, dead, spectator...).",
             self.rejected_inputs),
            ("arena_connections_total", "Connections accepted.", self.connections),
            ("arena_rooms_created_total", "Rooms created.", self.rooms_created),
            ("arena_rooms_disposed_total", "Rooms disposed.", self.rooms_disposed),
            ("arena_matches_finished_total", "Matches played to the end.", self.matches_finished),
            ("arena_matches_aborted_total", "Matches aborted (shutdown, abandoned).",
             self.matches_aborted),
            ("arena_replays_truncated_total", "Match recordings stopped at their size bound "
             "(MAX_REPLAY_BYTES).", self.replays_truncated),
        ):
            metric(name, "counter", help_, [("", value)])
        metric("arena_rooms_moved_total", "counter", "Rooms handed off to another node.",
               [("", self.rooms_moved)])
        metric("arena_players_moved_total", "counter", "Clients sent `moved` (4031).",
               [("", self.players_moved)])
        metric("arena_handoffs_received_total", "counter", "Rooms taken over from another node.",
               [("", self.handoffs_received)])
        metric("arena_handoffs_failed_total", "counter",
               "Handoffs that left the room on this node, by cause.",
               [(f'{{cause="{k}"}}', n) for k, n in sorted(self.handoffs_failed.items())]
               or [('{cause="no_target"}', 0)])
        metric("arena_handoffs_refused_total", "counter",
               "Incoming handoffs refused, by HTTP status.",
               [(f'{{status="{k}"}}', n) for k, n in sorted(self.handoffs_refused.items())]
               or [('{status="409"}', 0)])
        h2 = self.handoff_seconds
        metric("arena_handoff_seconds", "summary", "Handoff time, freeze to `moved` (source).",
               [("_sum", round(h2.total, 6)), ("_count", h2.count)])
        metric("arena_accept_errors_total", "counter", "Failed accepts (EMFILE, ENFILE...).",
               [("", self.accept_errors)])
        metric("arena_refused_total", "counter",
               "Connections, requests and frames refused by a limit (docs/protocol.md).",
               [(f'{{limit="{k}"}}', n) for k, n in sorted(self.refused.items())]
               or [('{limit="connections_per_address"}', 0)])
        cpu = resource.getrusage(resource.RUSAGE_SELF)
        metric("process_cpu_seconds_total", "counter", "User and system CPU time of the node process.",
               [("", round(cpu.ru_utime + cpu.ru_stime, 6))])
        metric("process_resident_memory_bytes", "gauge", "Resident memory of the node process.",
               [("", _resident_bytes())])
        metric("arena_connections_closed_total", "counter", "Connections closed by the node, by close code.",
               [(f'{{code="{c}"}}', n) for c, n in sorted(self.closed_by_code.items())]
               or [('{code="1000"}', 0)])
        return "\n".join(out) + "\n"


_PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _resident_bytes() -> int:
    """Current RSS from /proc (Linux); peak RSS from getrusage elsewhere."""
    try:
        with open("/proc/self/statm", "rb") as f:
            return int(f.read().split()[1]) * _PAGE_SIZE
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
