"""`python -m engine`: play one bots-only match and print its result (a quick look at the
game without a server). Options: --mode, --bots, --seed."""

from __future__ import annotations

import argparse

from engine.arena import MODES, Arena


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n")[0])
    ap.add_argument("--mode", choices=sorted(MODES), default="arena")
    ap.add_argument("--bots", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    cfg = MODES[args.mode]
    game = Arena(cfg, args.seed)
    for i in range(min(args.bots, cfg.max_players)):
        game.join(0, f"bot{i + 1}", bot=True)
    while not game.over:
        game.step()
        game.drain_events()
    print(f"{args.mode}: over after {game.tick / cfg.sim_hz:.1f} s ({game.tick} ticks), "
          f"reason {game.end_reason!r}")
    print(f"{'place':>5}  {'name':<10} {'score':>5} {'kills':>5} {'deaths':>6}")
    for r in game.results():
        print(f"{r.placement:>5}  {r.name:<10} {r.score:>5} {r.kills:>5} {r.deaths:>6}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
