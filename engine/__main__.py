"""`python -m engine`: play one bots-only match of any registered game and print its
result (a quick look at a game without a server). Options: --game, --mode, --bots, --seed."""

from __future__ import annotations

import argparse

from engine.registry import UnknownGame, UnknownMode, registry


def main(argv: list[str] | None = None) -> int:
    games = registry()
    ap = argparse.ArgumentParser(prog="python -m engine", description=__doc__.split("\n")[0])
    ap.add_argument("--game", default=None,
                    help=f"game name (default: the mode's game); one of {', '.join(games.games)}")
    ap.add_argument("--mode", default=None,
                    help=f"mode name (default: the game's first); one of {', '.join(games.modes)}")
    ap.add_argument("--bots", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    try:
        if args.mode is not None:
            gdef, mode = games.mode(args.mode)
            if args.game is not None and gdef.name != args.game:
                ap.error(f"mode {args.mode!r} is a mode of {gdef.name!r}, not {args.game!r}")
        else:
            gdef = games.game(args.game) if args.game else next(iter(games.games.values()))
            mode = next(iter(gdef.modes.values()))
    except (UnknownGame, UnknownMode) as exc:
        ap.error(f"unknown {'game' if isinstance(exc, UnknownGame) else 'mode'} {exc}")
    cfg = mode.config
    game = gdef.game(cfg, args.seed)
    for i in range(min(args.bots, mode.max_players)):
        game.join(0, f"bot{i + 1}", bot=True)
    while not game.over:
        game.step()
        game.drain_events()
    print(f"{gdef.name}/{mode.name}: over after {game.tick / cfg.sim_hz:.1f} s "
          f"({game.tick} ticks), reason {game.end_reason!r}")
    cols = [c.label for c in gdef.results]
    print(f"{'place':>5}  {'name':<10} {'score':>6} " + " ".join(f"{c:>8}" for c in cols))
    for r in game.results():
        print(f"{r.placement:>5}  {r.name:<10} {r.score:>6} " + " ".join(f"{v:>8}" for v in r.stats))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
