"""`python -m loadtest`: bot players over the real path, with live progress and a report.

    python -m loadtest --lobby http://127.0.0.1:8000 --bots 1000 --ramp 20 --duration 60 \\
        --transport websocket --processes 2 --report reports/c1k.json \\
        --node-metrics http://127.0.0.1:8001/metrics

Every bot: guest sign-in at the lobby (GET /api/csrf, POST /api/guest), POST /api/queue,
polls GET /api/queue until matched, connects to the node the lobby names with the chosen
transport, sends `join(token)`, plays (20 inputs/s whose values come from the game's bot
brain, or a generic one that reads the schema; a ping every 2 s), decodes every state frame
with `engine.codec` and applies the deltas, until `match_end`; then queues again, until the
run ends. Then it leaves (`leave`, or
DELETE /api/queue) and closes everything.

Flags (limits are enforced, see `LIMITS`):
  --lobby URL            the lobby's base URL (required)
  --bots N               number of bots (1..10000)
  --ramp S               bots start evenly over S seconds (0..600)
  --duration S           seconds the run goes on after the ramp (1..3600)
  --transport T          websocket (raw binary /play/websocket), sockjs-websocket,
                         xhr-streaming, xhr-polling, mix (the four), or a comma-separated
                         list of them: bot i uses the (i mod length)-th
  --processes P          worker processes, one asyncio loop each (1..64; default: bots/250,
                         at most the CPU count)
  --nice N               the worker processes lower their scheduling priority by N (0..19):
                         on a machine they share with the node and the lobby, the bots take
                         what those leave instead of an equal share of the cores
  --report PATH          the JSON report; PATH.png and PATH.html go next to it
  --node-metrics URL     a node's /metrics, scraped once a second (repeatable)
  --slow-fraction F      this fraction of the bots (spread evenly) stops reading SLOW_AFTER
                         seconds into each match, for SLOW_STALL seconds, then reads again
                         to see whether the node dropped it (expected: close 4020)
  --slow-after S, --slow-stall S
  --leave-after S        churn: each bot sends `leave` after 0.5x..1.5x S seconds of each
                         match (0: play every match to its end), then queues again
  --mode M               the queue mode sent to the lobby, any mode of any game the
                         lobby and its nodes run (default: the lobby's)
  --input-hz H           inputs per second per bot (1..60, default 20)
  --lobby-wait W         how a bot waits for its seat: auto (the lobby's event stream where
                         it has one, else GET /api/queue polls), events, poll (default auto)
  --poll-interval S      GET /api/queue period while waiting (default 0.5)
  --queue-timeout S      a ticket not matched after S seconds is an error (default 120)
  --allow-host H         a host other than loopback the bots may reach (repeatable); the
                         lobby, the nodes it names and the metrics URLs must all be allowed
  --watch-pid NAME=PID   report CPU % and memory of a local process tree (repeatable);
                         the bot workers are always watched as "bots"
  --settle S             after the bots stop, scrape the nodes up to S more seconds until
                         they report zero rooms and players (leak check)
  --target NAME=VALUE    a target to check and print PASS/FAIL for (repeatable):
                         frames_ratio, max_errors, tick_p99_ms, ack_p99_intervals,
                         acked_ratio, node_idle_after (1), slow_dropped (1)
  --quiet                no live progress
  --no-plot              no PNG/HTML

Progress goes to stderr once a second; the summary table to stdout. Exit status: 0 when
the run completed (targets are reported, not enforced), 2 on bad arguments, 1 when no
bot got a state frame.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import queue as queue_mod
import shlex
import signal
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

from loadtest import metrics, report
from loadtest.bot import LOOPBACK, TRANSPORTS, BotConfig
from loadtest.seating import WAITS
from loadtest.stats import Group, Histogram
from loadtest.worker import STOP_GRACE, WorkerPlan, event_loop_name, worker_main

LIMITS = {"bots": (1, 10_000), "ramp": (0, 600), "duration": (1, 3600), "processes": (1, 64),
          "leave_after": (0, 3600), "slow_after": (0, 600), "slow_stall": (0, 600),
          "poll_interval": (0.05, 60), "queue_timeout": (1, 3600),
          "input_hz": (1, 60), "slow_fraction": (0.0, 1.0), "settle": (0, 600), "nice": (0, 19)}
BOTS_PER_PROCESS = 250
READY_TIMEOUT = 60.0
TARGETS = ("frames_ratio", "max_errors", "tick_p99_ms", "ack_p99_intervals", "acked_ratio",
           "node_idle_after", "slow_dropped")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m loadtest", description=__doc__.split("\n\n")[1],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lobby", required=True, help="lobby base URL, e.g. http://127.0.0.1:8000")
    p.add_argument("--bots", type=int, default=10)
    p.add_argument("--ramp", type=float, default=5.0)
    p.add_argument("--duration", type=float, default=30.0)
    p.add_argument("--transport", default="websocket",
                   help=f"{', '.join(TRANSPORTS)}, mix (all four), or a comma-separated list")
    p.add_argument("--processes", type=int, default=0, help="0: bots/250, at most the CPU count")
    p.add_argument("--nice", type=int, default=0, help="the workers' os.nice() increment")
    p.add_argument("--report", type=Path, default=Path("reports/loadtest.json"))
    p.add_argument("--node-metrics", action="append", default=[], metavar="URL")
    p.add_argument("--slow-fraction", type=float, default=0.0)
    p.add_argument("--slow-after", type=float, default=3.0)
    p.add_argument("--slow-stall", type=float, default=30.0)
    p.add_argument("--leave-after", type=float, default=0.0)
    p.add_argument("--lobby-wait", choices=WAITS, default="auto")
    p.add_argument("--mode", default=None)
    p.add_argument("--input-hz", type=float, default=20.0)
    p.add_argument("--poll-interval", type=float, default=0.5)
    p.add_argument("--queue-timeout", type=float, default=120.0)
    p.add_argument("--allow-host", action="append", default=[], metavar="HOST")
    p.add_argument("--watch-pid", action="append", default=[], metavar="NAME=PID")
    p.add_argument("--settle", type=float, default=0.0)
    p.add_argument("--target", action="append", default=[], metavar="NAME=VALUE")
    p.add_argument("--quiet", action="store_true")
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)

    for name, (lo, hi) in LIMITS.items():
        value = getattr(args, name)
        if name == "processes" and value == 0:
            continue
        if not lo <= value <= hi:
            p.error(f"--{name.replace('_', '-')} must be in {lo}..{hi} (got {value})")
    if args.processes == 0:
        args.processes = max(1, min(os.cpu_count() or 1, math.ceil(args.bots / BOTS_PER_PROCESS)))
    args.processes = min(args.processes, args.bots)
    names = TRANSPORTS if args.transport == "mix" else tuple(args.transport.split(","))
    for name in names:
        if name not in TRANSPORTS:
            p.error(f"unknown transport {name!r}; one of {', '.join(TRANSPORTS)}, or mix")
    args.transports = names
    allowed = LOOPBACK | set(args.allow_host)
    for url in (args.lobby, *args.node_metrics):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            p.error(f"{url!r} is not an http(s) URL")
        if parts.hostname not in allowed:
            p.error(f"{parts.hostname!r} is not loopback: name it with --allow-host to load it")
    args.allowed_hosts = frozenset(allowed)
    args.watch = {}
    for item in args.watch_pid:
        name, _, pid = item.partition("=")
        if not name or not pid.isdigit():
            p.error(f"--watch-pid wants NAME=PID, got {item!r}")
        args.watch[name] = int(pid)
    args.targets = {}
    for item in args.target:
        name, _, value = item.partition("=")
        if name not in TARGETS:
            p.error(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
        try:
            args.targets[name] = float(value)
        except ValueError:
            p.error(f"--target {name} wants a number, got {value!r}")
    return args


class Run:
    """The parent process: starts the workers, merges their snapshots, scrapes the nodes,
    prints progress, and builds the report."""

    def __init__(self, args: argparse.Namespace, command: str):
        self.args = args
        self.command = command
        self.totals = {"normal": Group(), "slow": Group()}
        self.interval = {"normal": Group(), "slow": Group()}
        self.gauges: dict[int, dict] = {}
        self.finals: dict[int, dict] = {}
        self.timeline: list[dict] = []
        self.node_samples: dict[str, list[metrics.NodeSample]] = {u: [] for u in args.node_metrics}
        self.scrape_failures = 0
        self.watches: dict[str, list[metrics.ProcessWatch]] = {
            name: [metrics.ProcessWatch(name, pid)] for name, pid in args.watch.items()}
        self.process_rows: dict[str, list[dict]] = {}
        self.patch_hz = 0.0
        self.stopping = False

    # --- workers -----------------------------------------------------------------------

    def _plans(self) -> list[WorkerPlan]:
        a = self.args
        cfg = BotConfig(lobby_url=a.lobby.rstrip("/"), transports=a.transports, mode=a.mode,
                        allowed_hosts=a.allowed_hosts, input_hz=a.input_hz,
                        poll_interval=a.poll_interval, queue_timeout=a.queue_timeout,
                        slow_after=a.slow_after, slow_stall=a.slow_stall, leave_after=a.leave_after,
                        lobby_wait=a.lobby_wait)
        return [WorkerPlan(worker_id=w, indices=tuple(range(w, a.bots, a.processes)), total_bots=a.bots,
                           ramp=a.ramp, duration=a.duration, slow_fraction=a.slow_fraction, bot=cfg,
                           nice=a.nice)
                for w in range(a.processes)]

    def _take(self, kind: str, worker: int, payload) -> None:
        if kind == "ready":
            self.watches.setdefault("bots", []).append(metrics.ProcessWatch("bots", payload))
            return
        self.gauges[worker] = payload["gauges"]
        for name, group in payload["groups"].items():
            self.totals[name].merge(group)
            self.interval[name].merge(group)
        if kind == "final":
            self.finals[worker] = payload

    def execute(self) -> dict:
        a = self.args
        ctx = mp.get_context("spawn")
        out, go, stop = ctx.Queue(), ctx.Event(), ctx.Event()
        start_at = ctx.Value("d", 0.0)
        procs = [ctx.Process(target=worker_main, args=(plan, out, go, start_at, stop), daemon=True,
                             name=f"loadtest-worker-{plan.worker_id}") for plan in self._plans()]
        previous = signal.signal(signal.SIGINT, self._on_sigint)
        started_at = datetime.now(UTC).isoformat(timespec="seconds")
        try:
            for proc in procs:
                proc.start()
            ready = 0
            limit = time.monotonic() + READY_TIMEOUT
            while ready < len(procs):
                kind, worker, payload = out.get(timeout=max(0.1, limit - time.monotonic()))
                self._take(kind, worker, payload)
                ready += kind == "ready"
            self.t0 = time.monotonic() + 0.2
            start_at.value = self.t0
            go.set()
            end = self.t0 + a.ramp + a.duration
            hard_end = end + STOP_GRACE + 15
            next_tick = self.t0 + 1.0
            last_tick = self.t0
            while len(self.finals) < len(procs) and time.monotonic() < hard_end:
                if self.stopping:
                    stop.set()
                try:
                    kind, worker, payload = out.get(timeout=max(0.01, next_tick - time.monotonic()))
                    self._take(kind, worker, payload)
                except queue_mod.Empty:
                    pass
                if time.monotonic() >= next_tick:
                    now = time.monotonic()
                    self._tick(now, now - last_tick)
                    last_tick, next_tick = now, now + 1.0
            stop.set()
            elapsed = time.monotonic() - self.t0
            self.settle_after = self._settle()
        finally:
            signal.signal(signal.SIGINT, previous)
            stop.set()
            for proc in procs:
                proc.join(timeout=5)
                if proc.is_alive():
                    proc.terminate()
                    proc.join(timeout=2)
        missing = len(procs) - len(self.finals)
        if missing:
            self.totals["normal"].errors[f"worker did not report ({missing})"] += missing
        return self._report(started_at, elapsed)

    def _on_sigint(self, *_):
        if self.stopping:
            raise KeyboardInterrupt
        self.stopping = True
        print("\nstopping: bots leave their matches (Ctrl-C again to abort)", file=sys.stderr)

    # --- once a second -----------------------------------------------------------------

    def _tick(self, now: float, dt: float) -> dict:
        g = self.interval["normal"]
        slow = self.interval["slow"]
        self.interval = {"normal": Group(), "slow": Group()}
        gauges = {k: sum(w.get(k, 0) for w in self.gauges.values())
                  for k in ("started", "lobby", "queued", "connecting", "connected", "in_match")}
        frames = g.counters["frames"] + slow.counters["frames"]
        ack = g.hist["input_ack"]
        age = g.hist["state_interval"]
        row = {"t": round(now - self.t0, 2), **gauges,
               "frames_per_s": round(frames / dt, 1) if dt > 0 else None,
               "bytes_in_per_s": round((g.counters["bytes_in"] + slow.counters["bytes_in"]) / dt) if dt else None,
               "bytes_out_per_s": round((g.counters["bytes_out"] + slow.counters["bytes_out"]) / dt) if dt else None,
               "errors": sum(self.totals["normal"].errors.values()),
               "ack_p50_ms": _ms(ack, 0.5), "ack_p95_ms": _ms(ack, 0.95), "ack_p99_ms": _ms(ack, 0.99),
               "state_age_p99_ms": _ms(age, 0.99), "state_age_max_ms": round(age.max * 1000, 2) if age.count else None,
               "bot_lag_p99_ms": _ms(g.hist["bot_loop_lag"], 0.99), "loadavg": _loadavg()}
        self._scrape_nodes(row)
        self._sample_processes(row)
        self.timeline.append(row)
        if not self.args.quiet:
            print(self._progress(row), file=sys.stderr, flush=True)
        return row

    def _scrape_nodes(self, row: dict) -> None:
        players = rooms = None
        tick_p50 = tick_p99 = None
        for url, samples in self.node_samples.items():
            sample = metrics.scrape(url)
            if sample is None:
                self.scrape_failures += 1
                continue
            previous = samples[-1] if samples else None
            samples.append(sample)
            diff = metrics.bucket_diff(sample, previous)
            q50, q99 = metrics.histogram_quantile(0.5, diff), metrics.histogram_quantile(0.99, diff)
            if q99 is not None:  # several nodes: the worst
                tick_p50 = max(tick_p50 or 0.0, q50[0] * 1000)
                tick_p99 = max(tick_p99 or 0.0, q99[0] * 1000)
            players = (players or 0) + (sample.players or 0)
            rooms = (rooms or 0) + (sample.rooms or 0)
            if sample.cpu_seconds is not None and previous is not None and previous.cpu_seconds is not None:
                row.setdefault("cpu", {})[f"node {url}"] = round(
                    100 * (sample.cpu_seconds - previous.cpu_seconds) / max(1e-6, sample.t - previous.t), 1)
        row["node_players"], row["node_rooms"] = players, rooms
        row["tick_p50_ms"] = round(tick_p50, 3) if tick_p50 is not None else None
        row["tick_p99_ms"] = round(tick_p99, 3) if tick_p99 is not None else None

    def _sample_processes(self, row: dict) -> None:
        for name, watches in self.watches.items():
            parts = [s for s in (w.sample() for w in watches) if s is not None]
            if not parts:
                continue
            merged = {"rss_mb": round(sum(p["rss_mb"] for p in parts), 1)}
            if all("cpu_percent" in p for p in parts):
                merged["cpu_percent"] = round(sum(p["cpu_percent"] for p in parts), 1)
                row.setdefault("cpu", {})[name] = merged["cpu_percent"]
            row.setdefault("rss_mb", {})[name] = merged["rss_mb"]
            self.process_rows.setdefault(name, []).append(merged)

    def _progress(self, r: dict) -> str:
        cpu = " ".join(f"{k} {v:.0f}%" for k, v in (r.get("cpu") or {}).items() if not k.startswith("node "))
        node = ""
        if r.get("tick_p99_ms") is not None:
            node = f" | node rooms {r['node_rooms']:.0f} players {r['node_players']:.0f} tick p99 {r['tick_p99_ms']:.1f}ms"
        ack = f"{r['ack_p99_ms']:.0f}ms" if r["ack_p99_ms"] is not None else "-"
        lag = f" | bot lag p99 {r['bot_lag_p99_ms']:.0f}ms" if r.get("bot_lag_p99_ms") is not None else ""
        return (f"[{r['t']:6.1f}s] bots {r['started']:>5} lobby {r['lobby'] + r['queued']:>4} "
                f"connected {r['connected']:>5} in match {r['in_match']:>5} | frames/s {r['frames_per_s']:>8.0f} "
                f"| in {r['bytes_in_per_s'] / 1e6:5.2f} MB/s | ack p99 {ack:>6} | errors {r['errors']}"
                f"{node} | cpu {cpu}{lag} | load {r.get('loadavg')}")

    def _settle(self) -> dict | None:
        """After the bots stopped: wait (bounded) for the nodes to report no rooms and players."""
        if not self.node_samples:
            return None
        deadline = time.monotonic() + self.args.settle
        while True:
            now = time.monotonic()
            row = {"t": round(now - self.t0, 2), "started": 0, "lobby": 0, "queued": 0, "connecting": 0,
                   "connected": 0, "in_match": 0, "frames_per_s": 0, "bytes_in_per_s": 0, "bytes_out_per_s": 0,
                   "errors": sum(self.totals["normal"].errors.values()), "ack_p50_ms": None,
                   "ack_p95_ms": None, "ack_p99_ms": None, "state_age_p99_ms": None, "state_age_max_ms": None,
                   "settling": True}
            self._scrape_nodes(row)
            self._sample_processes(row)
            self.timeline.append(row)
            idle = row["node_rooms"] == 0 and row["node_players"] == 0
            if idle or now >= deadline:
                return {"rooms": row["node_rooms"], "players": row["node_players"],
                        "seconds_after_stop": round(now - self.t0 - self.args.ramp - self.args.duration, 1),
                        "rss_mb": (row.get("rss_mb") or {}).get("node")}
            if not self.args.quiet:
                print(f"[{row['t']:6.1f}s] settling: node rooms {row['node_rooms']} players {row['node_players']}",
                      file=sys.stderr, flush=True)
            time.sleep(1.0)

    # --- the report ------------------------------------------------------------------------

    def _node_summary(self) -> dict:
        out: dict = {"urls": list(self.node_samples), "scrapes": sum(len(s) for s in self.node_samples.values()),
                     "scrape_failures": self.scrape_failures}
        worst50 = worst99 = bound99 = None
        overruns = drops = 0.0
        cpu = []
        closes: dict[str, float] = {}
        end = {"rooms": 0.0, "players": 0.0}
        for samples in self.node_samples.values():
            # the measured window: from the first scrape after the start to the last before settling
            run = [s for s in samples if s.t <= self.t0 + self.args.ramp + self.args.duration + STOP_GRACE]
            if len(run) < 2:
                continue
            first, last = run[0], run[-1]
            diff = metrics.bucket_diff(last, first)
            q50, q99 = metrics.histogram_quantile(0.5, diff), metrics.histogram_quantile(0.99, diff)
            if q99 is not None:
                worst50 = max(worst50 or 0, q50[0] * 1000)
                worst99 = max(worst99 or 0, q99[0] * 1000)
                bound99 = max(bound99 or 0, q99[1] * 1000)
            overruns += (last.overruns or 0) - (first.overruns or 0)
            drops += (last.queue_drops or 0) - (first.queue_drops or 0)
            if last.cpu_seconds is not None and first.cpu_seconds is not None:
                cpu.append(100 * (last.cpu_seconds - first.cpu_seconds) / (last.t - first.t))
            for code, n in samples[-1].closed_by_code.items():
                closes[code] = closes.get(code, 0) + n
            end["rooms"] += samples[-1].rooms or 0
            end["players"] += samples[-1].players or 0
        out.update({
            "tick_p50_ms": round(worst50, 3) if worst50 is not None else None,
            "tick_p99_ms": round(worst99, 3) if worst99 is not None else None,
            "tick_p99_bucket_ms": bound99 if bound99 is None or math.isinf(bound99) else round(bound99, 3),
            "overruns": overruns, "queue_drops": drops,
            "cpu_percent_avg": round(sum(cpu), 1) if cpu else None,
            "cpu_source": "process_cpu_seconds_total" if cpu else "not exposed (see processes)",
            "closed_by_code": closes, "end": end, "after_settle": self.settle_after,
        })
        return out

    def _report(self, started_at: str, elapsed: float) -> dict:
        bots = [b for f in self.finals.values() for b in f.get("bots", [])]
        patch_hz = self._patch_hz()
        normal = report.group_summary(self.totals["normal"], patch_hz, elapsed,
                                      sum(1 for b in bots if b["group"] == "normal") or self.args.bots)
        slow_n = sum(1 for b in bots if b["group"] == "slow")
        slow = report.group_summary(self.totals["slow"], patch_hz, elapsed, slow_n) if slow_n else None
        processes = {}
        ramp_row = next((r for r in self.timeline if r["t"] >= self.args.ramp), None)
        for name, rows in self.process_rows.items():
            cpus = [r["cpu_percent"] for r in rows if "cpu_percent" in r]
            processes[name] = {"cpu_percent_avg": round(sum(cpus) / len(cpus), 1) if cpus else None,
                               "cpu_percent_max": max(cpus) if cpus else None,
                               "rss_mb_start": rows[0]["rss_mb"], "rss_mb_end": rows[-1]["rss_mb"],
                               "rss_mb_after_ramp": (ramp_row or {}).get("rss_mb", {}).get(name),
                               "rss_mb_max": max(r["rss_mb"] for r in rows)}
        a = self.args
        out = {
            "tool": "loadtest", "command": self.command,
            "config": {"lobby": a.lobby, "bots": a.bots, "ramp": a.ramp, "duration": a.duration,
                       "transport": a.transport, "processes": a.processes, "mode": a.mode,
                       "input_hz": a.input_hz, "slow_fraction": a.slow_fraction, "slow_after": a.slow_after,
                       "slow_stall": a.slow_stall, "leave_after": a.leave_after, "node_metrics": a.node_metrics, "settle": a.settle,
                       "poll_interval": a.poll_interval},
            "started_at": started_at, "elapsed_s": round(elapsed, 2), "bots": a.bots,
            "summary": normal, "groups": {"normal": normal, **({"slow": slow} if slow else {})},
            "node": self._node_summary(), "processes": processes,
            "machine": {"cpus": os.cpu_count(), "loadavg_start": self.timeline[0].get("loadavg") if self.timeline else None,
                        "loadavg_max": max((r.get("loadavg") or 0 for r in self.timeline), default=None),
                        "python": sys.version.split()[0], "bot_event_loop": event_loop_name()},
            "timeline": self.timeline, "per_bot": _per_bot(bots), "targets": [],
        }
        out["machine"]["bot_cpu_ms_per_bot_second"] = bot_cost(self.timeline)
        out["targets"] = report.check_targets(out, a.targets)
        return out

    def _patch_hz(self) -> float:
        """The patch rate the node announced (the most common, if matches differed)."""
        rates = self.totals["normal"].patch_rates + self.totals["slow"].patch_rates
        return rates.most_common(1)[0][0] if rates else 0.0


def _loadavg() -> float | None:
    """The machine's 1-minute load average: context for every figure (shared machines)."""
    try:
        return float(Path("/proc/loadavg").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _ms(h: Histogram, q: float) -> float | None:
    return round(h.percentile(q) * 1000, 2) if h.count else None


def bot_cost(timeline: list[dict]) -> float | None:
    """What the bots cost: their CPU ms per second of one bot in a match, over the seconds
    when at least 90% of the most bots ever in a match at once were playing (the ramp and
    the lobby traffic around it left out)."""
    peak = max((r.get("in_match", 0) for r in timeline), default=0)
    rows = [r for r in timeline if peak and r.get("in_match", 0) >= 0.9 * peak
            and "bots" in (r.get("cpu") or {})]
    if not rows:
        return None
    return round(10 * sum(r["cpu"]["bots"] for r in rows) / sum(r["in_match"] for r in rows), 3)


def _per_bot(bots: list[dict]) -> dict:
    """Distribution of per-bot totals (the full list is in `bots` of each worker's final)."""
    if not bots:
        return {"count": 0}

    def dist(key: str) -> dict:
        values = sorted(b[key] for b in bots)
        return {"min": values[0], "p50": values[len(values) // 2], "max": values[-1]}

    return {"count": len(bots), "bytes_in": dist("bytes_in"), "bytes_out": dist("bytes_out"),
            "matches": dist("matches"), "frames": dist("frames"),
            "transports": {t: sum(1 for b in bots if b["transport"] == t) for t in {b["transport"] for b in bots}},
            "frames_by_transport": {t: {"received": sum(b["frames"] for b in bots if b["transport"] == t),
                                        "expected": sum(b["frames_expected"] for b in bots if b["transport"] == t)}
                                    for t in sorted({b["transport"] for b in bots})}}


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parse_args(argv)
    command = "python -m loadtest " + shlex.join(argv)
    run = Run(args, command)
    result = run.execute()
    written = report.write_outputs(result, args.report, png=not args.no_plot, html_page=not args.no_plot)
    print(report.summary_table(result))
    print("\nreport: " + ", ".join(str(p) for p in written))
    return 0 if result["summary"]["frames"]["received"] else 1


if __name__ == "__main__":
    sys.exit(main())
