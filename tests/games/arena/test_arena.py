"""The Arena's rules: movement, walls, shooting, damage, respawn, pickups, inputs, end."""

from __future__ import annotations

import math
from collections import Counter

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.game import GameFull
from games.arena import GAME
from games.arena.game import (
    AIM_MAX,
    MODES,
    Arena,
    ArenaConfig,
    clamp_move,
    wrap_aim,
)

EV_HIT, EV_KILL, EV_PICKUP, EV_RESPAWN = 16, 17, 18, 19
X, Y, AIM, HP, SCORE, KILLS, DEATHS, FLAGS, ACK, NAME = range(1, 11)

# An empty room: no walls, no pickups, one spawn point on the left.
OPEN = ArenaConfig(sim_hz=30, walls=(), pickups=(), spawns=((200, 500),))  # tick counts below assume 30 Hz


def inp(seq: int, mx: int = 0, my: int = 0, aim: int = 0,
        buttons: int = 0) -> tuple[int, tuple[int, ...]]:
    """submit()'s (seq, values) as the room passes them: clamped to the input spec."""
    return seq, GAME.clamp((mx, my, aim, buttons))


def run(game: Arena, ticks: int) -> list:
    events = []
    for _ in range(ticks):
        game.step()
        events += game.drain_events()
    return events


def aim_at(game: Arena, src: int, dst: int) -> int:
    e = game.entities()
    return round(math.atan2(e[dst][Y] - e[src][Y], e[dst][X] - e[src][X]) * 1000)


# --- a whole match --------------------------------------------------------------------------

@pytest.mark.parametrize(("mode", "bots", "seed"), [("arena", 16, 7), ("sprint", 4, 3)])
def test_bots_only_match_plays_to_a_sane_result(mode: str, bots: int, seed: int) -> None:
    cfg = MODES[mode]
    game = Arena(cfg, seed)
    for i in range(bots):
        game.join(0, f"bot{i}", bot=True)
    events = game.drain_events()
    while not game.over:
        game.step()
        events += game.drain_events()
        assert game.tick <= cfg.time_limit * cfg.sim_hz
    assert game.end_reason in ("score", "time")
    results = game.results()
    assert len(results) == bots
    if game.end_reason == "score":
        assert results[0].score >= cfg.score_limit
    else:
        assert game.tick == cfg.time_limit * cfg.sim_hz and game.clock == 0
        assert results[0].score < cfg.score_limit

    kills = Counter(e[2] for e in events if e[0] == EV_KILL)
    deaths = Counter(e[1] for e in events if e[0] == EV_KILL)
    score_pickups = Counter(e[1] for e in events if e[0] == EV_PICKUP and e[2] == 1)
    assert sum(kills.values()) > 0, "bots never killed anyone"
    for r in results:
        assert r.stats == (kills[r.player_id], deaths[r.player_id])
        assert r.score == cfg.kill_score * r.stats[0] + cfg.pickup_score * score_pickups[r.player_id]
        assert r.bot and r.user_id == 0
    # placements: ordered, 1-based, ties share one, the next one skips
    assert results[0].placement == 1
    for i in range(1, len(results)):
        a, b = results[i - 1], results[i]
        assert a.score >= b.score
        assert b.placement == (a.placement if a.score == b.score else i + 1)
    # only game events (the room announces joins, leaves and the end)
    assert {e[0] for e in events} <= {EV_HIT, EV_KILL, EV_PICKUP, EV_RESPAWN}
    assert results[0].row() == [results[0].player_id, 0, results[0].name, results[0].score, 1,
                                True, *results[0].stats]
    # a finished game stays finished
    tick = game.tick
    game.step()
    assert game.tick == tick and game.drain_events() == []
    with pytest.raises(GameFull):
        game.join(5, "late")


def test_entities_follow_the_protocol_table() -> None:
    game = Arena(MODES["arena"], 1)
    human = game.join(42, "alice")
    bot = game.join(0, "bob", bot=True)
    run(game, 30)
    ents = game.entities()
    kinds = Counter(f[0] for f in ents.values())
    assert kinds[1] == 2 and kinds[3] == len(MODES["arena"].pickups)
    for eid, f in ents.items():
        assert 0 < eid < 65536
        assert all(type(v) is int for v in f[:-1])
        if f[0] == 1:
            assert len(f) == 11 and type(f[NAME]) is str
            assert 0 <= f[X] <= 16000 and 0 <= f[Y] <= 10000 and -AIM_MAX <= f[AIM] <= AIM_MAX
        elif f[0] == 2:
            assert len(f) == 7
        else:
            assert len(f) == 4 and f[3] in (1, 2)
    assert ents[human][NAME] == "alice" and ents[human][FLAGS] == 1 | 4
    assert ents[bot][FLAGS] == 1 | 2 | 4
    cfg = game.client_config()
    for key in ("sim_hz", "patch_hz", "width", "height", "walls", "player_radius",
                "player_speed", "projectile_radius", "pickup_radius", "max_hp", "time_limit",
                "score_limit", "mode", "reconnect_window", "max_input_rate"):
        assert key in cfg
    assert cfg["walls"] == [list(w) for w in MODES["arena"].walls]


# --- movement and walls ---------------------------------------------------------------------

def test_players_move_at_speed_and_stop_at_world_edge() -> None:
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    x0 = game.entities()[p][X]
    game.submit(p, *inp(1, mx=100))
    run(game, 10)
    assert game.entities()[p][X] - x0 == 10 * game.step_len
    game.submit(p, *inp(2, mx=-100, my=-100))
    run(game, 300)
    e = game.entities()[p]
    assert (e[X], e[Y]) == (game.radius, game.radius)


def test_player_cannot_pass_through_a_wall_and_slides_along_it() -> None:
    wall = (400, 300, 40, 400)   # a vertical bar right of the spawn
    game = Arena(OPEN.replace(walls=(wall,)), 1)
    p = game.join(1, "a")
    game.submit(p, *inp(1, mx=100))
    for _ in range(120):
        game.step()
        assert game.entities()[p][X] <= (400 - 16) * 10
    assert game.entities()[p][X] == (400 - 16) * 10   # resting against the wall
    y0 = game.entities()[p][Y]
    game.submit(p, *inp(2, mx=71, my=71))   # diagonal into the wall: slides down it
    run(game, 20)
    e = game.entities()[p]
    assert e[X] == (400 - 16) * 10 and e[Y] > y0 + 20 * 40
    # and round the corner it goes on
    run(game, 60)
    assert game.entities()[p][X] > 4400


@pytest.mark.parametrize("seed", range(4))
def test_no_random_walk_ever_ends_inside_a_wall(seed: int) -> None:
    import random
    r = random.Random(seed)
    game = Arena(MODES["arena"].replace(time_limit=600), seed)
    pids = [game.join(i, f"p{i}") for i in range(6)]
    walls = game.walls
    rad = game.radius
    for t in range(1500):
        for i, p in enumerate(pids):
            if t % 15 == i:
                game.submit(p, *inp(t + 1, r.randint(-100, 100), r.randint(-100, 100)))
        game.step()
        for p in pids:
            f = game.entities()[p]
            for wx, wy, ww, wh in walls:
                qx = min(max(f[X], wx), wx + ww)
                qy = min(max(f[Y], wy), wy + wh)
                assert (f[X] - qx) ** 2 + (f[Y] - qy) ** 2 >= rad * rad


# --- shooting, damage, death, respawn ---------------------------------------------------------

def duel(cfg: ArenaConfig = OPEN) -> tuple[Arena, int, int]:
    game = Arena(cfg.replace(spawns=((200, 500), (700, 500))), 5)
    a, b = game.join(1, "a"), game.join(2, "b")
    game.drain_events()
    return game, a, b


def test_projectiles_fly_straight_hit_and_kill_then_victim_respawns() -> None:
    game, a, b = duel()
    aim = aim_at(game, a, b)
    game.submit(a, *inp(1, aim=aim, buttons=1))
    game.step()
    shots = {k: v for k, v in game.entities().items() if v[0] == 2}
    assert len(shots) == 1
    (sid, shot), = shots.items()
    assert shot[1:3] == game.entities()[a][X:Y + 1] and shot[5] == game.tick and shot[6] == a
    run(game, 5)
    assert game.entities()[sid] == shot   # linear motion: never updated
    # holding fire: one shot per cooldown until b dies (100 hp / 20 damage = 5 hits)
    events = []
    for _ in range(200):
        game.step()
        events += game.drain_events()
        if any(e[0] == EV_KILL for e in events):
            break
    hits = [e for e in events if e[0] == EV_HIT]
    assert len(hits) == 5 and all(h[1:] == [b, a, 20] for h in hits)
    assert [e for e in events if e[0] == EV_KILL] == [[EV_KILL, b, a]]
    ea, eb = game.entities()[a], game.entities()[b]
    assert (ea[KILLS], ea[SCORE]) == (1, OPEN.kill_score)
    assert eb[HP] == 0 and eb[DEATHS] == 1 and not eb[FLAGS] & 1
    assert not game.submit(b, *inp(1, mx=100))   # the dead don't move
    dead_at = game.tick
    game.submit(a, *inp(2, aim=aim))   # cease fire
    events = run(game, game.respawn_ticks)
    assert [EV_RESPAWN, b] in events and game.tick - dead_at == game.respawn_ticks
    eb = game.entities()[b]
    assert eb[HP] == OPEN.max_hp and eb[FLAGS] & 1
    # respawned far from a: the other spawn point
    assert abs(eb[X] - game.entities()[a][X]) >= 5000


def test_fire_cooldown_limits_the_rate() -> None:
    game, a, _ = duel()
    game.submit(a, *inp(1, aim=-1571, buttons=1))   # straight up, at nobody
    fired = 0
    for _ in range(game.cooldown * 4):
        before = {k for k, v in game.entities().items() if v[0] == 2}
        game.step()
        fired += len({k for k, v in game.entities().items() if v[0] == 2} - before)
    assert fired == 4


def test_walls_stop_projectiles() -> None:
    game, a, b = duel(OPEN.replace(walls=((430, 400, 40, 200),)))
    game.submit(a, *inp(1, aim=aim_at(game, a, b), buttons=1))
    events = run(game, 90)
    assert not [e for e in events if e[0] == EV_HIT]
    assert game.entities()[b][HP] == OPEN.max_hp
    # every projectile ended at the wall: alive ones are all left of it
    for f in game.entities().values():
        if f[0] == 2:
            assert f[1] + f[3] * (game.tick - f[5]) < 4300


def test_projectiles_expire_after_their_lifetime() -> None:
    game = Arena(OPEN.replace(spawns=((100, 100),)), 1)
    a = game.join(1, "a")
    game.submit(a, *inp(1, aim=0, buttons=1))   # 700 units of room to the right
    game.step()
    game.submit(a, *inp(2, aim=0))
    sid = next(k for k, v in game.entities().items() if v[0] == 2)
    run(game, game.shot_life - 1)
    assert sid in game.entities()
    game.step()
    assert sid not in game.entities()


# --- pickups ----------------------------------------------------------------------------------

def test_score_pickup_is_taken_and_respawns() -> None:
    cfg = OPEN.replace(pickups=((260, 500, 1),))
    game = Arena(cfg, 1)
    p = game.join(1, "a")
    pick = next(k for k, v in game.entities().items() if v[0] == 3)
    game.submit(p, *inp(1, mx=100))
    events = run(game, 5)
    assert [EV_PICKUP, p, 1] in events
    assert pick not in game.entities() and game.entities()[p][SCORE] == cfg.pickup_score
    game.submit(p, *inp(2, mx=-100))
    run(game, game.pickup_ticks)
    back = [k for k, v in game.entities().items() if v[0] == 3]
    assert len(back) == 1 and back[0] != pick


def test_heal_pickup_only_when_hurt() -> None:
    cfg = OPEN.replace(pickups=((200, 500, 2),), spawns=((200, 500), (700, 500)))
    game = Arena(cfg, 5)
    a, b = game.join(1, "a"), game.join(2, "b")
    healer = a if game.entities()[a][X] == 2000 else b
    shooter = b if healer == a else a
    run(game, 3)
    assert any(v[0] == 3 for v in game.entities().values())   # full hp: left alone
    game.submit(shooter, *inp(1, aim=aim_at(game, shooter, healer), buttons=1))
    events = []
    for _ in range(120):
        game.step()
        events += game.drain_events()
        if [EV_PICKUP, healer, 2] in events:
            break
    assert [EV_HIT, healer, shooter, 20] in events
    assert [EV_PICKUP, healer, 2] in events
    assert not any(v[0] == 3 for v in game.entities().values())


# --- input validation -------------------------------------------------------------------------

def test_clamp_and_wrap_rules() -> None:
    assert clamp_move(0, 0) == (0, 0)
    assert clamp_move(500, -500) == (70, -70)
    assert clamp_move(100, 100) == (70, 70)
    assert clamp_move(-10**30, 3) == (-100, 3)
    assert clamp_move(71, 71) == (71, 71)
    for v in (0, 3142, -3142, 1234):
        assert wrap_aim(v) == v
    assert wrap_aim(3143) == -3140
    assert wrap_aim(-3143) == 3140
    for v in (10**30, -10**30, 99999, -7000):
        assert -AIM_MAX <= wrap_aim(v) <= AIM_MAX


def test_the_input_spec_clamps_and_wraps() -> None:
    """What the room does to every input before submit() (GAME.clamp)."""
    assert GAME.clamp((500, -500, 3142, 1)) == (100, -100, 3142, 1)
    assert GAME.clamp((0, 0, 3143, 256)) == (0, 0, -3142, 255)
    assert GAME.clamp((0, 0, -3143, -1)) == (0, 0, 3142, 0)
    lo, hi = -AIM_MAX, AIM_MAX
    for v in (10**30, -10**30, 99999, -7000):
        assert lo <= GAME.clamp((0, 0, v, 0))[2] <= hi


@pytest.mark.parametrize("bad", [(), (1, 2, 3), (1, 2, 3, 4, 5), None, 7])
def test_values_of_the_wrong_shape_are_rejected_without_effect(bad) -> None:
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    before = game.entities()
    assert game.submit(p, 1, bad) is False
    game.step()
    assert game.entities() == before


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(*[st.integers()] * 4), max_size=40))
def test_any_integers_as_input_never_break_the_game(values: list) -> None:
    """Unclamped values straight into submit() (the room clamps; the game still holds)."""
    game = Arena(MODES["sprint"], 1)
    p = game.join(1, "a")
    game.join(0, "b", bot=True)
    for i, v in enumerate(values):
        game.submit(p, i + 1, v)
        if i % 3 == 0:
            game.step()
    game.step()
    for f in game.entities().values():
        if f[0] == 1:
            assert game.radius <= f[X] <= game.width - game.radius
            assert game.radius <= f[Y] <= game.height - game.radius
            assert -AIM_MAX <= f[AIM] <= AIM_MAX and 0 <= f[ACK] < 2**32


def test_ack_is_the_applied_seq_and_unknown_or_bot_players_are_ignored() -> None:
    """The seq rule (strictly increasing per connection) is the room's; the game records
    the seq of the input it applied as the player's ack."""
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    bot = game.join(0, "b", bot=True)
    assert game.submit(p, *inp(5, mx=100))
    assert not game.submit(999, *inp(10))
    assert not game.submit(bot, *inp(10))
    game.step()
    assert game.entities()[p][ACK] == 5
    assert game.submit(p, *inp(2**32 - 1, mx=100))
    game.step()
    assert game.entities()[p][ACK] == 2**32 - 1
    assert game.entities()[bot][ACK] == 0


def test_coalescing_last_input_moves_fire_is_ored() -> None:
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    x0 = game.entities()[p][X]
    assert game.submit(p, *inp(1, mx=-100, aim=100, buttons=1))
    assert game.submit(p, *inp(2, mx=0, aim=200, buttons=0))
    assert game.submit(p, *inp(3, mx=100, aim=3000, buttons=6))   # bits other than 0 ignored
    game.step()
    e = game.entities()
    assert e[p][X] == x0 + game.step_len and e[p][AIM] == 3000 and e[p][ACK] == 3
    shots = {k for k, f in e.items() if f[0] == 2}
    assert len(shots) == 1   # the click was not lost
    for _ in range(game.cooldown * 2):   # ...but the trigger is not held
        game.step()
        shots |= {k for k, f in game.entities().items() if f[0] == 2}
    assert len(shots) == 1


def test_queue_is_bounded_and_keeps_fire() -> None:
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    assert game.submit(p, *inp(1, buttons=1))
    for s in range(2, 30):
        assert game.submit(p, *inp(s, my=100))
    assert game.queued(p) == OPEN.max_queued_inputs
    game.step()
    e = game.entities()
    assert game.queued(p) == 0 and e[p][ACK] == 29
    assert sum(1 for f in e.values() if f[0] == 2) == 1


def test_disconnected_player_stands_still_and_ignores_inputs() -> None:
    game = Arena(OPEN, 1)
    p = game.join(1, "a")
    game.submit(p, *inp(1, mx=100))
    game.step()
    game.set_connected(p, False)
    where = game.entities()[p]
    assert not where[FLAGS] & 4
    assert not game.submit(p, *inp(2, mx=100))
    run(game, 10)
    assert game.entities()[p][X:Y + 1] == where[X:Y + 1]
    game.set_connected(p, True)
    assert game.submit(p, *inp(1, mx=100))   # a new connection starts its seq again
    game.step()
    assert game.entities()[p][X] > where[X] and game.entities()[p][ACK] == 1


def test_join_leave_and_full_room() -> None:
    game = Arena(OPEN.replace(max_players=2), 1)
    a = game.join(1, "a" * 40)
    b = game.join(2, "b")
    assert game.entities()[a][NAME] == "a" * 24
    with pytest.raises(GameFull):
        game.join(3, "c")
    game.leave(b)
    game.leave(b)       # twice: ignored
    game.leave(12345)   # unknown: ignored
    assert game.drain_events() == []   # joins and leaves are the room's events
    c = game.join(3, "c")
    assert c not in (a, b) and set(game.entities()) >= {a, c}
    assert {r.player_id for r in game.results()} == {a, b, c}   # leavers stay in results


def test_bad_configs_are_refused() -> None:
    with pytest.raises(ValueError):
        ArenaConfig(max_players=17)
    with pytest.raises(ValueError):
        ArenaConfig(spawns=((760, 460),))   # inside the centre block
    with pytest.raises(ValueError):
        ArenaConfig(walls=((100, 100, 2, 300),), player_speed=6000)   # a player could cross it
    with pytest.raises(ValueError):
        ArenaConfig(pickups=((100, 100, 9),))
