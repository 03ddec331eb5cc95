"""Bots: they roam the map, find each other, shoot, and get unstuck from walls."""

from __future__ import annotations

from collections import Counter

from games.arena.game import MODES, Arena

EV_HIT, EV_KILL, EV_PICKUP = 16, 17, 18


def test_bots_roam_fight_and_never_stay_stuck() -> None:
    game = Arena(MODES["arena"].replace(score_limit=10_000), 11)
    bots = [game.join(0, f"bot{i}", bot=True) for i in range(8)]
    cells: dict[int, set] = {b: set() for b in bots}
    still: Counter = Counter()
    worst_still = 0
    last = {b: None for b in bots}
    events = []
    for _ in range(1800):
        game.step()
        events += game.drain_events()
        ents = game.entities()
        for b in bots:
            f = ents[b]
            alive = f[8] & 1
            cells[b].add((f[1] // 1000, f[2] // 1000))   # 100-unit cells
            if alive and last[b] == (f[1], f[2]):
                still[b] += 1
                worst_still = max(worst_still, still[b])
            else:
                still[b] = 0
            last[b] = (f[1], f[2])
    for b in bots:
        assert len(cells[b]) >= 15, f"bot {b} saw only {len(cells[b])} cells"
    assert worst_still < 60, "a bot stood still for two seconds"
    shooters = {e[2] for e in events if e[0] == EV_HIT}
    assert len(shooters) >= 6
    assert any(e[0] == EV_PICKUP for e in events)
    assert sum(1 for e in events if e[0] == EV_KILL) >= 8


def test_a_person_can_play_alone_against_bots() -> None:
    game = Arena(MODES["sprint"], 4)
    me = game.join(77, "me")
    for i in range(3):
        game.join(0, f"bot{i}", bot=True)
    seq = 0
    events = []
    while not game.over:
        if game.tick % 10 == 0:
            seq += 1
            game.submit(me, seq, (0, 0, 0, 0))   # a passive human
        game.step()
        events += game.drain_events()
    assert any(e[0] == EV_HIT and e[1] == me for e in events), "the bots ignored the human"
    rows = {r.player_id: r for r in game.results()}
    assert rows[me].user_id == 77 and not rows[me].bot
    assert game.end_reason in ("score", "time")
