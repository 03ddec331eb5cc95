"""`python -m engine.bench`: what a room costs. Prints the machine and the figures and
writes a JSON report (default reports/engine-bench.json).

- µs per tick of a 16-player Arena full of bots, and of a 64-entity stress room;
- µs and bytes per keyframe and per delta for 16 players, from real play;
- bytes per second per player at 20 patches per second.

Each figure is the median over `--repeat` runs (the machine is shared; the spread is in
the report). This is the one engine module that does I/O: it prints and writes a file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

from engine import codec
from engine.arena import MODES, Arena, ArenaConfig
from engine.bots import BotBrain

TARGETS = {"tick_plus_encode_us": 1000, "delta_bytes_mean": 300, "keyframe_bytes_max": 1500}


def machine() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"platform": platform.platform(), "python": sys.version.split()[0],
            "implementation": platform.python_implementation(), "cpu": cpu or platform.processor(),
            "cpus": os.cpu_count(),
            "affinity": sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None}


def filled(config: ArenaConfig, seed: int, humans: bool) -> tuple[Arena, list]:
    """16 players: bots, or "humans" whose inputs (one per tick, like a client sending at
    the tick rate) come from a bot brain through `submit`, so `ack` changes as in play."""
    game = Arena(config, seed)
    brains = []
    for i in range(16):
        pid = game.join(1000 + i, f"player{i:02d}", bot=not humans)
        if humans:
            brains.append((pid, BotBrain(pid)))
    return game, brains


def drive(game: Arena, brains: list) -> None:
    if brains:
        players = {p.pid: p for p in game.players_view()}
        for pid, brain in brains:
            p = players[pid]
            if p.alive:
                game.submit(pid, brain.think(game, p))


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def run_room(config: ArenaConfig, seed: int, ticks: int, warmup: int,
             humans: bool = False) -> dict:
    """Tick a room of 16 players; time every tick (with its inputs), and every patch's
    encoding."""
    game, brains = filled(config, seed, humans)
    for _ in range(warmup):
        drive(game, brains)
        game.step()
    game.drain_events()
    every = game.patch_every
    perf = time.perf_counter_ns
    tick_ns: list[int] = []
    delta_ns: list[int] = []
    key_ns: list[int] = []
    delta_bytes: list[int] = []
    key_bytes: list[int] = []
    entity_counts: list[int] = []
    prev = game.entities()
    base = game.tick
    events: list = []
    for _ in range(ticks):
        t0 = perf()
        drive(game, brains)
        game.step()
        tick_ns.append(perf() - t0)
        events += game.drain_events()
        if game.tick % every:
            continue
        t0 = perf()
        cur = game.entities()
        added, removed, updated = codec.make_delta(prev, cur)
        delta = codec.encode(codec.Delta(game.tick, base, game.clock, added, removed, updated,
                                         events))
        t1 = perf()
        key = codec.encode(codec.Keyframe(game.tick, game.clock, game.entities(), events))
        t2 = perf()
        delta_ns.append(t1 - t0)
        key_ns.append(t2 - t1)
        delta_bytes.append(len(delta))
        key_bytes.append(len(key))
        entity_counts.append(len(cur))
        prev, base, events = cur, game.tick, []
    us = 1e-3
    return {
        "tick_us_mean": statistics.fmean(tick_ns) * us,
        "tick_us_p50": pct(tick_ns, 0.5) * us,
        "tick_us_p99": pct(tick_ns, 0.99) * us,
        "delta_us_mean": statistics.fmean(delta_ns) * us,
        "keyframe_us_mean": statistics.fmean(key_ns) * us,
        "delta_bytes_mean": statistics.fmean(delta_bytes),
        "delta_bytes_p95": pct(delta_bytes, 0.95),
        "delta_bytes_max": max(delta_bytes),
        "keyframe_bytes_mean": statistics.fmean(key_bytes),
        "keyframe_bytes_max": max(key_bytes),
        "entities_mean": statistics.fmean(entity_counts),
        "entities_max": max(entity_counts),
        "patch_every": every,
        "ticks": ticks,
        "over": game.over,
    }


# The stress room: 16 bots firing about twice as often with longer-lived projectiles,
# and 12 pickups: about 64 entities on average.
STRESS = MODES["arena"].replace(
    mode="stress", fire_cooldown=0.15, projectile_lifetime=1.2, score_limit=1_000_000,
    time_limit=3600, pickups=MODES["arena"].pickups + (
        (800, 150, 1), (800, 850, 1), (330, 500, 1), (1270, 500, 1)))
PLAY = MODES["arena"].replace(score_limit=1_000_000, time_limit=3600)


def median_of(runs: list[dict]) -> dict:
    out = {}
    for key, value in runs[0].items():
        if isinstance(value, bool) or not isinstance(value, int | float):
            out[key] = value
        else:
            out[key] = statistics.median(r[key] for r in runs)
            if key.endswith("_mean"):
                out[key.replace("_mean", "_spread")] = [min(r[key] for r in runs),
                                                        max(r[key] for r in runs)]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports/engine-bench.json", help="JSON report path")
    ap.add_argument("--ticks", type=int, default=3000, help="measured ticks per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median kept)")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    args = ap.parse_args(argv)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    info = machine()
    print(f"machine: {info['cpu']} x{info['cpus']} | {info['platform']} | "
          f"{info['implementation']} {info['python']}")
    play = median_of([run_room(PLAY, seed, args.ticks, 300) for seed in range(args.repeat)])
    stress = median_of([run_room(STRESS, seed, args.ticks, 300) for seed in range(args.repeat)])
    humans = median_of([run_room(PLAY, seed, args.ticks, 300, humans=True)
                        for seed in range(args.repeat)])
    patch_hz = 20
    figures = {
        "tick16_us": play["tick_us_mean"],
        "tick16_us_p99": play["tick_us_p99"],
        "stress_tick_us": stress["tick_us_mean"],
        "stress_entities_mean": stress["entities_mean"],
        "delta16_us": play["delta_us_mean"],
        "delta16_bytes_mean": play["delta_bytes_mean"],
        "delta16_bytes_p95": play["delta_bytes_p95"],
        "keyframe16_us": play["keyframe_us_mean"],
        "keyframe16_bytes_mean": play["keyframe_bytes_mean"],
        "keyframe16_bytes_max": play["keyframe_bytes_max"],
        # one tick plus a patch's encoding, as if every tick were a patch tick
        "tick_plus_encode_us": play["tick_us_mean"] + play["delta_us_mean"],
        "bytes_per_s_per_player_at_20hz": play["delta_bytes_mean"] * patch_hz,
        "stress_delta_bytes_mean": stress["delta_bytes_mean"],
        # 16 players sending one input per tick: ack moves in every patch
        "humans16_tick_us": humans["tick_us_mean"],
        "humans16_delta_bytes_mean": humans["delta_bytes_mean"],
        "humans16_keyframe_bytes_max": humans["keyframe_bytes_max"],
        "stress_keyframe_bytes_max": stress["keyframe_bytes_max"],
    }
    checks = {
        "tick_plus_encode_us": figures["tick_plus_encode_us"] < TARGETS["tick_plus_encode_us"],
        "delta_bytes_mean": max(figures["delta16_bytes_mean"],
                                figures["humans16_delta_bytes_mean"]) < TARGETS["delta_bytes_mean"],
        "keyframe_bytes_max": figures["keyframe16_bytes_max"] < TARGETS["keyframe_bytes_max"],
    }
    report = {"machine": info, "args": vars(args), "figures": figures, "targets": TARGETS,
              "met": checks, "play16": play, "stress": stress, "humans16": humans,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    rows = [
        ("16-player tick (bots)", f"{figures['tick16_us']:.0f} µs  (p99 {figures['tick16_us_p99']:.0f} µs)"),
        (f"stress tick ({figures['stress_entities_mean']:.0f} entities)",
         f"{figures['stress_tick_us']:.0f} µs"),
        ("delta, 16 players", f"{figures['delta16_us']:.0f} µs, {figures['delta16_bytes_mean']:.0f} B "
                              f"mean, {figures['delta16_bytes_p95']:.0f} B p95"),
        ("keyframe, 16 players", f"{figures['keyframe16_us']:.0f} µs, "
                                 f"{figures['keyframe16_bytes_mean']:.0f} B mean, "
                                 f"{figures['keyframe16_bytes_max']:.0f} B max"),
        ("16 'human' players (inputs, ack)", f"{figures['humans16_tick_us']:.0f} µs tick, "
                                             f"{figures['humans16_delta_bytes_mean']:.0f} B delta"),
        ("tick + encode", f"{figures['tick_plus_encode_us']:.0f} µs  (target < 1000)"),
        ("per player at 20 patches/s", f"{figures['bytes_per_s_per_player_at_20hz'] / 1000:.2f} kB/s"),
    ]
    for name, value in rows:
        print(f"  {name:<32} {value}")
    print("targets met:", ", ".join(f"{k}={'yes' if v else 'NO'}" for k, v in checks.items()))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
