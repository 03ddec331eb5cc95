"""Bridge to games/tag/game.py for the JS prediction test of Tag (tests/js/tag.test.mjs).

Stdin: {"moves": [[x, y, mx, my, it], ...]}; stdout: {"config": the welcome's game keys and
sim_hz, "out": [[x, y], ...]}: each runner placed at (x, y) and stepped once by `Tag.step`
with input (mx, my), as "it" (it = 1) or not, the other runner far away.
"""

from __future__ import annotations

import json
import sys

from engine.registry import registry


def main() -> None:
    req = json.load(sys.stdin)
    d = registry().game("tag")
    mode = next(iter(d.modes))
    out = []
    for x, y, mx, my, it in req["moves"]:
        game = d.new(mode, seed=1)
        a, b = game.join(1, "a"), game.join(2, "b")
        game.step()  # picks "it" by lot among the two
        c = game.config
        me = a if (game.it == a) == bool(it) else b
        other = b if me == a else a
        runner = game.players[me]
        runner.x, runner.y = x, y
        far = game.players[other]
        far.x, far.y = (c.width - c.radius, c.height - c.radius) if x < c.width / 2 else (c.radius, c.radius)
        game.submit(me, 1, (mx, my))
        game.step()
        assert game.it == (me if it else other), "nobody was tagged"
        out.append([runner.x, runner.y])
    first = d.new(mode, seed=1)
    config = {**first.client_config(), "sim_hz": first.config.sim_hz}
    json.dump({"config": config, "out": out}, sys.stdout)


if __name__ == "__main__":
    main()
