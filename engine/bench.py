"""`python -m engine.bench`: what a room of any registered game costs. Prints the machine
and the figures and writes a JSON report (default reports/engine-bench.json).

- µs per tick of a full room of the mode (default: the first game's first mode) of bots,
  of "humans" driven by the game's wire-state brain (`GameDef.bot`), and of the game's
  stress room (the optional `BENCH_STRESS` config in the module of its Game class);
- µs and bytes per keyframe and per delta, from real play;
- bytes per second per player at the mode's patch rate.

Each figure is the median over `--repeat` runs (the machine is shared; the spread is in
the report). This is the one engine module that does I/O: it prints and writes a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from engine import codec
from engine.clock import patch_every
from engine.game import Game, GameDef, Mode
from engine.registry import registry

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


def filled(gdef: GameDef, config: Any, players: int, seed: int,
           humans: bool, game: Any = None) -> tuple[Game, list]:
    """A full room: bots, or "humans" whose inputs (one per tick, like a client sending at
    the tick rate) come from the game's wire-state brain (`GameDef.bot`) through `submit`,
    so `ack` changes as in play. `game`: a new match of `config` to fill (default: one
    made here)."""
    if game is None:
        game = gdef.game(config, seed)
    brains = []
    for i in range(players):
        pid = game.join(1000 + i, f"player{i:02d}", bot=not humans)
        if humans:
            brains.append([pid, gdef.bot({**game.client_config(), "schema": gdef.schema(),
                                          "sim_hz": config.sim_hz}, pid, seed * 1000 + i), 0])
    return game, brains


def think(gdef: GameDef, game: Game, brains: list) -> list:
    """The "humans'" next inputs as (player, seq, clamped values); not timed (a client's
    work, not the room's)."""
    if not brains:
        return []
    entities, tick, clamp = game.entities(), game.tick, gdef.clamp
    out = []
    for b in brains:
        b[2] += 1
        out.append((b[0], b[2], clamp(b[1].think(tick, entities))))
    return out


def drive(game: Game, inputs: list) -> None:
    for pid, seq, values in inputs:
        game.submit(pid, seq, values)


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def run_room(gdef: GameDef, config: Any, players: int, seed: int, ticks: int, warmup: int,
             humans: bool = False) -> dict:
    """Tick a full room; time every tick (with its submits), and every patch's encoding."""
    game, brains = filled(gdef, config, players, seed, humans)
    for _ in range(warmup):
        drive(game, think(gdef, game, brains))
        game.step()
    game.drain_events()
    every = patch_every(config.sim_hz, config.patch_hz)
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
        inputs = think(gdef, game, brains)
        t0 = perf()
        drive(game, inputs)
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


def snapshot_room(gdef: GameDef, mode: Mode, config: Any, players: int, seed: int,
                  repeat: int = 200) -> dict:
    """µs per snapshot and per restore (engine/snapshot.py) of a full room of bots after
    300 ticks, and its bytes (issue 13: each well under one tick)."""
    game, _ = filled(gdef, config, players, seed, humans=False)
    for _ in range(300):
        game.step()
    perf = time.perf_counter_ns
    dump_ns, load_ns = [], []
    for _ in range(repeat):
        t0 = perf()
        data = gdef.snapshot(game, mode.name)
        t1 = perf()
        gdef.restore(data)
        load_ns.append(perf() - t1)
        dump_ns.append(t1 - t0)
    return {"snapshot_us": statistics.median(dump_ns) / 1000,
            "restore_us": statistics.median(load_ns) / 1000, "snapshot_bytes": len(data),
            "tick_budget_us": 1e6 / config.sim_hz}


def unlimited(config: Any) -> Any:
    """`config` with its time (and score, if it has one) limit out of reach."""
    changes = {"time_limit": 3600}
    if hasattr(config, "score_limit"):
        changes["score_limit"] = 1_000_000
    return dataclasses.replace(config, **changes)


def stress_config(gdef: GameDef) -> Any | None:
    """The game's optional stress room: `BENCH_STRESS` in the module of its Game class."""
    return getattr(sys.modules[gdef.game.__module__], "BENCH_STRESS", None)


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


def pick(ap: argparse.ArgumentParser, game: str | None, mode: str | None) -> tuple[GameDef, Mode]:
    games = registry()
    if mode is not None:
        if mode not in games.modes:
            ap.error(f"unknown mode {mode!r}; registered: {', '.join(games.modes)}")
        gdef, m = games.mode(mode)
        if game is not None and gdef.name != game:
            ap.error(f"mode {mode!r} belongs to game {gdef.name!r}")
        return gdef, m
    if game is None:
        gdef = next(iter(games.games.values()))
    elif game in games.games:
        gdef = games.game(game)
    else:
        ap.error(f"unknown game {game!r}; registered: {', '.join(games.games)}")
    return gdef, next(iter(gdef.modes.values()))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.bench", description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports/engine-bench.json", help="JSON report path")
    ap.add_argument("--ticks", type=int, default=3000, help="measured ticks per run")
    ap.add_argument("--repeat", type=int, default=3, help="runs per figure (median kept)")
    ap.add_argument("--cpu", type=int, default=None, help="pin the process to this core")
    ap.add_argument("--game", default=None, help="game name (default: the mode's game)")
    ap.add_argument("--mode", default=None, help="mode (default: the game's first)")
    args = ap.parse_args(argv)
    gdef, mode = pick(ap, args.game, args.mode)
    if args.cpu is not None and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {args.cpu})

    info = machine()
    print(f"machine: {info['cpu']} x{info['cpus']} | {info['platform']} | "
          f"{info['implementation']} {info['python']}")
    n = mode.max_players
    play_cfg = unlimited(mode.config)
    print(f"game {gdef.name}, mode {mode.name}, {n} players")
    play = median_of([run_room(gdef, play_cfg, n, seed, args.ticks, 300)
                      for seed in range(args.repeat)])
    stress_cfg = stress_config(gdef)
    stress = median_of([run_room(gdef, stress_cfg, n, seed, args.ticks, 300)
                        for seed in range(args.repeat)]) if stress_cfg is not None else play
    humans = median_of([run_room(gdef, play_cfg, n, seed, args.ticks, 300, humans=True)
                        for seed in range(args.repeat)]) if gdef.bot is not None else play
    snap = median_of([snapshot_room(gdef, mode, play_cfg, n, seed) for seed in range(args.repeat)])
    patch_hz = mode.config.patch_hz
    figures = {
        "tick_us": play["tick_us_mean"],
        "tick_us_p99": play["tick_us_p99"],
        "stress_tick_us": stress["tick_us_mean"],
        "stress_entities_mean": stress["entities_mean"],
        "delta_us": play["delta_us_mean"],
        "delta_bytes_mean": play["delta_bytes_mean"],
        "delta_bytes_p95": play["delta_bytes_p95"],
        "keyframe_us": play["keyframe_us_mean"],
        "keyframe_bytes_mean": play["keyframe_bytes_mean"],
        "keyframe_bytes_max": play["keyframe_bytes_max"],
        # one tick plus a patch's encoding, as if every tick were a patch tick
        "tick_plus_encode_us": play["tick_us_mean"] + play["delta_us_mean"],
        "bytes_per_s_per_player": play["delta_bytes_mean"] * patch_hz,   # at the mode's patch_hz
        "stress_delta_bytes_mean": stress["delta_bytes_mean"],
        # "humans" sending one input per tick: ack moves in every patch
        "humans_tick_us": humans["tick_us_mean"],
        "humans_delta_bytes_mean": humans["delta_bytes_mean"],
        "humans_keyframe_bytes_max": humans["keyframe_bytes_max"],
        "stress_keyframe_bytes_max": stress["keyframe_bytes_max"],
        # a whole room written down and rebuilt (a node handing it to another: issue 13)
        "snapshot_us": snap["snapshot_us"],
        "restore_us": snap["restore_us"],
        "snapshot_bytes": snap["snapshot_bytes"],
    }
    checks = {
        "tick_plus_encode_us": figures["tick_plus_encode_us"] < TARGETS["tick_plus_encode_us"],
        "delta_bytes_mean": max(figures["delta_bytes_mean"],
                                figures["humans_delta_bytes_mean"]) < TARGETS["delta_bytes_mean"],
        "keyframe_bytes_max": figures["keyframe_bytes_max"] < TARGETS["keyframe_bytes_max"],
        "snapshot_and_restore_under_a_tenth_of_a_tick":
            max(snap["snapshot_us"], snap["restore_us"]) < snap["tick_budget_us"] / 10,
    }
    report = {"machine": info, "args": vars(args), "game": gdef.name, "mode": mode.name,
              "players": n, "figures": figures, "targets": TARGETS, "met": checks, "play": play, "stress": stress, "humans": humans, "snapshot": snap,
              "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    rows = [
        (f"{n}-player tick (bots)", f"{figures['tick_us']:.0f} µs  (p99 {figures['tick_us_p99']:.0f} µs)"),
        (f"stress tick ({figures['stress_entities_mean']:.0f} entities)" if stress_cfg is not None
         else "stress tick (no BENCH_STRESS)", f"{figures['stress_tick_us']:.0f} µs"),
        (f"delta, {n} players", f"{figures['delta_us']:.0f} µs, {figures['delta_bytes_mean']:.0f} B "
                              f"mean, {figures['delta_bytes_p95']:.0f} B p95"),
        (f"keyframe, {n} players", f"{figures['keyframe_us']:.0f} µs, "
                                 f"{figures['keyframe_bytes_mean']:.0f} B mean, "
                                 f"{figures['keyframe_bytes_max']:.0f} B max"),
        (f"{n} 'human' players (inputs, ack)", f"{figures['humans_tick_us']:.0f} µs tick, "
                                             f"{figures['humans_delta_bytes_mean']:.0f} B delta"),
        ("tick + encode", f"{figures['tick_plus_encode_us']:.0f} µs  (target < 1000)"),
        (f"per player at {patch_hz} patches/s", f"{figures['bytes_per_s_per_player'] / 1000:.2f} kB/s"),
        (f"snapshot / restore, {n} players", f"{figures['snapshot_us']:.0f} µs / "
                                             f"{figures['restore_us']:.0f} µs, "
                                             f"{figures['snapshot_bytes']} B (tick: "
                                             f"{snap['tick_budget_us']:.0f} µs)"),
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
