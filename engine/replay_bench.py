"""`python -m engine.replay_bench`: what replays cost (issue 14). Prints the figures and
writes a JSON report (default reports/replay-bench.json).

- recording: CPU µs per tick of a full room of "humans" (inputs from the game's
  wire-state brain, one per player per tick, through `submit`) bare and through a
  `Recorder`, in one run, ticks alternating between the two rooms (same seed and
  inputs): the ratio;
- replay bytes per minute of play, of that room and of a room of fill bots;
- verification: `load_replay` + `verify` of a whole match of the mode (its time limit,
  the score limit lifted so it lasts that long), against the match's duration (process
  CPU time: the machine may be shared);
- frames files (`build_frames`): build time (CPU) and bytes per minute, and both in one
  run of the match (`verify_and_build`).

Like engine/bench.py, a command that prints and writes a file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import time
from pathlib import Path
from typing import Any

from engine.bench import drive, filled, machine, pick, think
from engine.frames import build_frames, verify_and_build
from engine.game import GameDef, Mode
from engine.recording import Recorder, load_replay
from engine.replay import verify


def recording_cost(gdef: GameDef, mode: Mode, config: Any, players: int, seed: int,
                   ticks: int) -> dict:
    bare, brains = filled(gdef, config, players, seed, humans=True)
    rec, _ = recorded(gdef, mode, config, players, seed, humans=True)
    inner = rec.game
    perf = time.process_time_ns   # CPU time of each tick: the machine may be shared
    bare_ns, rec_ns = [], []
    for _ in range(ticks):
        inputs = think(gdef, bare, brains)   # the same inputs for both (same state)
        t0 = perf()
        drive(bare, inputs)
        bare.step()
        t1 = perf()
        drive(rec, inputs)
        rec.step()
        t2 = perf()
        bare_ns.append(t1 - t0)
        rec_ns.append(t2 - t1)
    t0 = perf()
    data = rec.finish("aborted", "aborted")
    finish_ms = (perf() - t0) / 1e6
    assert bare.entities() == inner.entities(), "the two rooms diverged"
    minutes = ticks / config.sim_hz / 60
    return {"tick_us": statistics.fmean(bare_ns) / 1000,
            "recorded_tick_us": statistics.fmean(rec_ns) / 1000,
            "ratio": statistics.fmean(rec_ns) / statistics.fmean(bare_ns),
            "inputs_per_s": players * config.sim_hz, "replay_bytes": len(data),
            "replay_bytes_per_min": len(data) / minutes, "finish_ms": finish_ms,
            "raw_bytes_per_min": rec.size / minutes}


def recorded(gdef: GameDef, mode: Mode, config: Any, players: int, seed: int,
             humans: bool) -> tuple[Recorder, list]:
    """`engine.bench.filled`'s room, its joins recorded too."""
    rec = Recorder(gdef.game(config, seed), gdef, mode.name, seed, config=config)
    _, brains = filled(gdef, config, players, seed, humans, game=rec)
    return rec, brains


def whole_match(gdef: GameDef, mode: Mode, config: Any, players: int, seed: int,
                humans: bool) -> tuple[bytes, int]:
    rec, brains = recorded(gdef, mode, config, players, seed, humans)
    game = rec.game
    while not game.over:
        drive(rec, think(gdef, game, brains))
        rec.step()
    return rec.finish(), game.tick


def verification(gdef: GameDef, mode: Mode, config: Any, players: int, seed: int,
                 humans: bool, repeat: int) -> dict:
    data, ticks = whole_match(gdef, mode, config, players, seed, humans)
    perf = time.process_time   # CPU time: the machine may be shared
    verify_s, frames_s, both_s = [], [], []
    for _ in range(repeat):
        t0 = perf()
        verified = verify(load_replay(data))
        verify_s.append(perf() - t0)
        t0 = perf()
        frames = build_frames(load_replay(data))
        frames_s.append(perf() - t0)
        t0 = perf()
        verify_and_build(load_replay(data))
        both_s.append(perf() - t0)
    seconds = ticks / config.sim_hz
    return {"match_s": seconds, "ticks": ticks, "over": verified.over,
            "verify_s": statistics.median(verify_s),
            "verify_per_match_s": statistics.median(verify_s) / seconds,
            "replay_bytes": len(data), "replay_bytes_per_min": len(data) * 60 / seconds,
            "frames_bytes": len(frames), "frames_bytes_per_min": len(frames) * 60 / seconds,
            "frames_build_s": statistics.median(frames_s),
            "verify_and_build_s": statistics.median(both_s)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine.replay_bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="reports/replay-bench.json", help="JSON report path")
    ap.add_argument("--ticks", type=int, default=2400, help="ticks of the recording-cost run")
    ap.add_argument("--repeat", type=int, default=3, help="verifications timed (median kept)")
    ap.add_argument("--game", default=None, help="game name (default: the mode's game)")
    ap.add_argument("--mode", default=None, help="mode (default: the game's first)")
    args = ap.parse_args(argv)
    gdef, mode = pick(ap, args.game, args.mode)
    info = machine()
    print(f"machine: {info['cpu']} x{info['cpus']} | {info['platform']} | "
          f"{info['implementation']} {info['python']}")
    n = mode.max_players
    changes = {"score_limit": 1_000_000} if hasattr(mode.config, "score_limit") else {}
    full = dataclasses.replace(mode.config, **changes)   # lasts its whole time limit
    endless = dataclasses.replace(full, time_limit=3600)
    print(f"game {gdef.name}, mode {mode.name}, {n} players, matches of "
          f"{full.time_limit} s")
    cost = recording_cost(gdef, mode, endless, n, 1, args.ticks)
    humans = verification(gdef, mode, full, n, 2, True, args.repeat)
    bots = verification(gdef, mode, full, n, 3, False, args.repeat)
    figures = {
        "tick_us": cost["tick_us"], "recorded_tick_us": cost["recorded_tick_us"],
        "recording_ratio": cost["ratio"],
        "replay_bytes_per_min_humans": humans["replay_bytes_per_min"],
        "replay_bytes_per_min_bots": bots["replay_bytes_per_min"],
        "verify_s_humans": humans["verify_s"], "verify_s_bots": bots["verify_s"],
        "match_s": humans["match_s"],
        "frames_bytes_per_min_humans": humans["frames_bytes_per_min"],
        "frames_bytes_per_min_bots": bots["frames_bytes_per_min"],
        "frames_build_s_humans": humans["frames_build_s"],
        "verify_and_build_s_humans": humans["verify_and_build_s"],
    }
    report = {"machine": info, "args": vars(args), "game": gdef.name, "mode": mode.name,
              "players": n, "figures": figures, "recording": cost, "humans": humans,
              "bots": bots, "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    m = full.time_limit / 60
    rows = [
        (f"tick, {n} 'humans' (1 input/tick)", f"{cost['tick_us']:.0f} µs bare, "
         f"{cost['recorded_tick_us']:.0f} µs recorded: x{cost['ratio']:.3f}"),
        ("replay bytes per minute", f"{humans['replay_bytes_per_min'] / 1000:.1f} kB ('humans', "
         f"{cost['inputs_per_s']} inputs/s), {bots['replay_bytes_per_min'] / 1000:.2f} kB (bots)"),
        (f"verify a {m:g}-minute match", f"{humans['verify_s'] * 1000:.0f} ms ('humans'), "
         f"{bots['verify_s'] * 1000:.0f} ms (bots)  (target < 1000 ms)"),
        ("frames file per minute", f"{humans['frames_bytes_per_min'] / 1000:.0f} kB ('humans'), "
         f"{bots['frames_bytes_per_min'] / 1000:.0f} kB (bots); built in "
         f"{humans['frames_build_s'] * 1000:.0f} ms per match"),
        ("verify + frames in one run", f"{humans['verify_and_build_s'] * 1000:.0f} ms per match "
         "('humans')"),
    ]
    for name, value in rows:
        print(f"  {name:<36} {value}")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
