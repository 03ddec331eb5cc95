"""Bridge to games/arena/game.py for the JS prediction tests (tests/js/predict.test.mjs).

Stdin: {"mode": name, "moves": [[x, y, mx, my], ...]} (1/10 units, raw move vector).
Stdout: {"config": the Arena's client_config, "out": [[x, y], ...]}: each move applied once by
`Arena._move` after the engine's own `clamp_move`, as `Arena.step` does.
"""

from __future__ import annotations

import json
import sys
from types import SimpleNamespace

from games.arena.game import MODES, Arena, clamp_move


def main() -> None:
    req = json.load(sys.stdin)
    arena = Arena(MODES[req["mode"]], seed=1)
    out = []
    for x, y, mx, my in req["moves"]:
        mx, my = clamp_move(mx, my)
        p = SimpleNamespace(x=x, y=y, mx=mx, my=my)
        if mx or my:  # as Arena.step: a player with no move vector is not moved at all
            arena._move(p)  # the engine's movement rule itself, not a copy
        out.append([p.x, p.y])
    json.dump({"config": arena.client_config(), "out": out}, sys.stdout)


if __name__ == "__main__":
    main()
