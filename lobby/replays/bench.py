"""`python -m lobby.replays.bench [--game G] [--mode M] [--repeat 3]`: what the lobby's
verification of one match costs (issue 14), on the lobby's own path (`services.judge`:
`load_replay`, the re-run with the frames built in the same run, `compare` with the
posted result), for a whole match of the mode (its time limit, the score limit lifted;
default the Arena's `arena`: 16 players, 3 minutes) of "humans" (one input per player
per tick) and of fill bots. Prints the figures and writes reports/replay-verify-bench.json.
No database: the storage and rating writes around it are a few milliseconds."""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
    os.environ.setdefault("ARENA_ENV", "dev")
    import django
    django.setup()

    from engine.bench import machine, pick
    from engine.recording import load_replay
    from engine.replay import verify
    from engine.replay_bench import whole_match

    from .services import judge

    ap = argparse.ArgumentParser(prog="python -m lobby.replays.bench",
                                 description=__doc__.split("\n")[0])
    ap.add_argument("--game", default=None)
    ap.add_argument("--mode", default=None)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--out", default="reports/replay-verify-bench.json")
    args = ap.parse_args(argv)
    gdef, mode = pick(ap, args.game, args.mode)
    changes = {"score_limit": 1_000_000} if hasattr(mode.config, "score_limit") else {}
    config = dataclasses.replace(mode.config, **changes)
    info = machine()
    print(f"machine: {info['cpu']} x{info['cpus']} | {info['platform']} | "
          f"{info['implementation']} {info['python']}")
    print(f"game {gdef.name}, mode {mode.name}, {mode.max_players} players, "
          f"matches of {config.time_limit} s")
    figures: dict[str, dict] = {}
    for label, humans, seed in (("humans", True, 2), ("bots", False, 3)):
        data, ticks = whole_match(gdef, mode, config, mode.max_players, seed, humans)
        replay = load_replay(data)
        v = verify(replay)
        posted = {"game": gdef.name, "mode": mode.name, "status": "finished",
                  "reason": v.end_reason, "ticks": v.ticks, "players": v.players}
        cpu, wall = [], []
        for _ in range(args.repeat):
            c0, w0 = time.process_time(), time.perf_counter()
            result = judge(data, match_id="", game=gdef.name, mode=mode.name, posted=posted)
            cpu.append(time.process_time() - c0)
            wall.append(time.perf_counter() - w0)
        assert result.verdict == "verified", result.detail
        seconds = ticks / config.sim_hz
        f = figures[label] = {
            "match_s": seconds, "verify_cpu_s": statistics.median(cpu),
            "verify_wall_s": statistics.median(wall),
            "verify_share_of_match": statistics.median(cpu) / seconds,
            "replay_bytes": len(data), "replay_bytes_per_min": len(data) * 60 / seconds,
            "frames_bytes": len(result.frames),
            "frames_bytes_per_min": len(result.frames) * 60 / seconds}
        print(f"  {label:7s} verify+frames {f['verify_cpu_s'] * 1000:5.0f} ms CPU "
              f"({f['verify_wall_s'] * 1000:.0f} ms wall) for {seconds:.0f} s of play "
              f"({f['verify_share_of_match'] * 100:.2f}%); replay "
              f"{f['replay_bytes_per_min'] / 1000:.1f} kB/min, frames "
              f"{f['frames_bytes_per_min'] / 1000:.0f} kB/min")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"machine": info, "game": gdef.name, "mode": mode.name,
                               "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                               "figures": figures}, indent=2))
    print(f"report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
