"""Tag's rules: "it" by lot, a touch passes it on, nobody can be tagged right after a tag,
one point per second not "it", disconnects and leaves."""

from __future__ import annotations

from games.tag import GAME
from games.tag.game import EV_TAG, Tag, TagConfig

X, Y, IT, SCORE, FLAGS, ACK, NAME = range(1, 8)
CFG = TagConfig(sim_hz=10, patch_hz=5)


def place(game: Tag, pid: int, x: int, y: int) -> None:
    game.players[pid].x, game.players[pid].y = x, y


def test_it_is_picked_by_lot_once_two_are_here_and_a_touch_passes_it() -> None:
    game = Tag(CFG, 1)
    a = game.join(1, "a")
    game.step()
    assert game.drain_events() == [] and game.entities()[a][IT] == 0   # alone: nobody is it
    b = game.join(2, "b")
    place(game, a, 500, 500)
    place(game, b, 2500, 500)
    game.step()
    assert game.drain_events() == [[EV_TAG, 0, game.it]]
    it, other = (a, b) if game.it == a else (b, a)
    assert game.entities()[it][IT] == 1 and game.entities()[other][IT] == 0
    place(game, other, game.players[it].x + 100, game.players[it].y)   # within two radii
    game.step()
    assert game.drain_events() == [[EV_TAG, it, other]] and game.it == other
    # nobody can be tagged for no_tag_back seconds, then the touch counts
    for _ in range(CFG.no_tag_back * CFG.sim_hz - 1):
        game.step()
        assert game.drain_events() == []
    game.step()
    assert game.drain_events() == [[EV_TAG, other, it]]
    r = {row.player_id: row for row in game.results()}
    assert r[it].stats == (1, 1) and r[other].stats == (1, 1)


def test_inputs_move_at_speed_and_are_acked_and_the_world_has_edges() -> None:
    game = Tag(CFG, 2)
    a = game.join(1, "a")
    game.join(2, "b")
    place(game, a, 1000, 1000)
    assert game.submit(a, 7, GAME.clamp((500, 0)))
    game.step()
    e = game.entities()[a]
    boost = CFG.it_boost if game.it == a else 100
    assert e[X] == 1000 + round(CFG.speed * boost / 100 / CFG.sim_hz) and e[ACK] == 7
    assert not game.submit(a, 8, (1, 2, 3)) and not game.submit(99, 8, (0, 0))
    game.submit(a, 9, (-100, -100))
    for _ in range(100):
        game.step()
    assert game.entities()[a][X:Y + 1] == (CFG.radius, CFG.radius)


def test_score_is_whole_seconds_not_it_and_results_keep_leavers() -> None:
    game = Tag(CFG, 3)
    a, b = game.join(1, "a"), game.join(2, "b")
    place(game, a, 200, 200)
    place(game, b, 3800, 2300)
    for _ in range(35):
        game.step()
    it, other = (a, b) if game.it == a else (b, a)
    assert game.entities()[other][SCORE] == 3 and game.entities()[it][SCORE] == 0
    game.leave(other)
    assert other not in game.entities()
    rows = game.results()
    assert [r.player_id for r in rows] == [other, it] and [r.placement for r in rows] == [1, 2]


def test_it_who_disconnects_hands_it_on_and_stands_still() -> None:
    game = Tag(CFG, 4)
    pids = [game.join(i, f"p{i}") for i in range(3)]
    for i, pid in enumerate(pids):
        place(game, pid, 500 + 1200 * i, 1200)
    game.step()
    first = game.it
    x0 = game.entities()[first][X]
    game.submit(first, 1, (100, 0))
    game.set_connected(first, False)
    game.step()
    assert game.it != first and game.drain_events()[-1] == [EV_TAG, 0, game.it]
    assert game.entities()[first][FLAGS] & 2 and game.entities()[first][X] == x0
    assert not game.submit(first, 2, (100, 0))


def test_a_match_ends_on_time() -> None:
    game = GAME.new("tag-duel", 5)
    game.join(0, "x", bot=True)
    game.join(0, "y", bot=True)
    while not game.over:
        game.step()
    assert game.tick == 60 * 30 and game.end_reason == "time" and game.clock == 0
    assert sum(r.score for r in game.results()) <= 60
