"""The Arena's wall broad phase (`_Cells`, `_wall_cells`): its "no" must be exact, since
`_move` and `_move_shots` skip their wall loops on it."""

from __future__ import annotations

import random

import pytest

from games.arena.game import CELL, MODES, Arena, Q, _Cells, _wall_cells, segment_rect


@pytest.mark.parametrize("seed", range(3))
def test_cells_say_no_only_where_no_box_holds_the_point(seed: int) -> None:
    r = random.Random(seed)
    width, height = 2000, 1500
    boxes = []
    for _ in range(8):
        x0, y0 = r.randint(-300, width), r.randint(-300, height)
        boxes.append((x0, y0, x0 + r.randint(0, 400), y0 + r.randint(0, 400)))
    cells = _Cells(CELL, width, height, boxes)
    noes = 0
    for _ in range(20000):
        x, y = r.randint(-100, width + 100), r.randint(-100, height + 100)
        held = any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes)
        if held:
            assert cells.maybe(x, y)
        if not cells.maybe(x, y):
            noes += 1
    assert noes > 1000   # and it does rule out most of the open floor
    # outside the world it never rules anything out
    assert cells.maybe(-1, 10) and cells.maybe(10, height + CELL + 1)


def test_no_wall_reaches_a_player_or_a_shot_where_the_cells_say_no() -> None:
    game = Arena(MODES["arena"], 1)
    c = game.config
    near_wall, near_box = _wall_cells(c.walls, game.radius, c.projectile_radius * Q,
                                      game.shot_speed, game.width, game.height)
    r = random.Random(7)
    r2 = game.radius * game.radius
    s = game.shot_speed
    for _ in range(20000):
        x, y = r.randint(0, game.width), r.randint(0, game.height)
        if not near_wall.maybe(x, y):
            for wx, wy, ww, wh in game.walls:   # _move's own tests: none would push
                qx = min(max(x, wx), wx + ww)
                qy = min(max(y, wy), wy + wh)
                assert (x - qx) ** 2 + (y - qy) ** 2 >= r2
        if not near_box.maybe(x, y):
            vx, vy = r.randint(-s, s), r.randint(-s, s)
            for x0, y0, x1, y1 in game.shot_boxes:
                assert segment_rect(x, y, vx, vy, x0, y0, x1, y1) == 2.0
