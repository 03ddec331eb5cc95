"""The Arena's wall broad phase (`_cover`, `_wall_cells`): its "no" must be exact, since
`_move` and `_move_shots` skip their wall loops on it."""

from __future__ import annotations

import random

import pytest

from games.arena.game import CELL, MODES, Arena, Q, _cover, _wall_cells, segment_rect


@pytest.mark.parametrize("seed", range(3))
def test_cover_says_no_only_where_no_box_holds_the_point(seed: int) -> None:
    r = random.Random(seed)
    width, height = 2000, 1500
    boxes = []
    for _ in range(8):   # some reach past the world's edges
        x0, y0 = r.randint(-300, width), r.randint(-300, height)
        boxes.append((x0, y0, x0 + r.randint(0, 400), y0 + r.randint(0, 400)))
    cover = _cover(width, height, boxes)
    noes = 0
    for _ in range(20000):
        x, y = r.randint(0, width), r.randint(0, height)
        if not cover[x // CELL][y // CELL]:
            noes += 1
            assert not any(x0 <= x <= x1 and y0 <= y <= y1 for x0, y0, x1, y1 in boxes)
    assert noes > 1000   # and it does rule out most of the open floor


def test_no_wall_reaches_a_player_or_a_shot_where_the_cover_says_no() -> None:
    game = Arena(MODES["arena"], 1)
    c = game.config
    near_wall, near_box = _wall_cells(c.walls, game.radius, c.projectile_radius * Q,
                                      game.shot_speed, game.width, game.height)
    r = random.Random(7)
    r2 = game.radius * game.radius
    s = game.shot_speed
    for _ in range(20000):
        x, y = r.randint(0, game.width), r.randint(0, game.height)
        if not near_wall[x // CELL][y // CELL]:
            for wx, wy, ww, wh in game.walls:   # _move's own test: none would push
                qx = min(max(x, wx), wx + ww)
                qy = min(max(y, wy), wy + wh)
                assert (x - qx) ** 2 + (y - qy) ** 2 >= r2
        if not near_box[x // CELL][y // CELL]:
            vx, vy = r.randint(-s, s), r.randint(-s, s)
            for x0, y0, x1, y1 in game.shot_boxes:
                assert segment_rect(x, y, vx, vy, x0, y0, x1, y1) == 2.0


def test_a_config_with_walls_as_lists_plays_like_one_with_tuples() -> None:
    walls = [[740, 440, 120, 120], [300, 200, 240, 40]]   # as JSON would give them
    listed = Arena(MODES["arena"].replace(walls=walls), 3)
    tupled = Arena(MODES["arena"].replace(walls=tuple(map(tuple, walls))), 3)
    for game in (listed, tupled):
        for i in range(4):
            game.join(0, f"b{i}", bot=True)
        for _ in range(400):
            game.step()
    assert listed.config == tupled.config
    assert listed.entities() == tupled.entities()
