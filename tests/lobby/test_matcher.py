"""The pure matching rule: grouping by rating, widening with wait, bot fill, modes."""

from __future__ import annotations

import random

from lobby.matchmaking.matcher import Rules, Waiting, form_groups

RULES = Rules(size=4, max_wait=10, window_base=100, window_growth=50, window_max=1000)


def tickets(*specs: tuple[float, float], mode: str = "arena", start: int = 1) -> list[Waiting]:
    return [Waiting(start + i, start + i, rating, wait, mode)
            for i, (rating, wait) in enumerate(specs)]


def ids(groups: list[list[Waiting]]) -> list[list[int]]:
    return [sorted(t.ticket_id for t in g) for g in groups]


def test_groups_close_ratings_and_leaves_far_ones():
    ts = tickets((1000, 0), (1050, 0), (1020, 0), (1090, 0), (1500, 0), (1510, 0))
    assert ids(form_groups(ts, RULES)) == [[1, 2, 3, 4]]


def test_two_clusters_make_two_matches():
    ts = tickets(*[(1000 + i, 0) for i in range(4)], *[(2000 + i, 0) for i in range(4)])
    assert ids(form_groups(ts, RULES)) == [[1, 2, 3, 4], [5, 6, 7, 8]]


def test_window_widens_with_wait():
    spread = [(1000, 0), (1150, 0), (1300, 0), (1450, 0)]  # 450 points apart
    assert form_groups(tickets(*spread), RULES) == []
    # window(w) = 100 + 50 w: 450 points needs w >= 7 for every member
    assert form_groups(tickets(*[(r, 6.9) for r, _ in spread]), RULES) == []
    assert ids(form_groups(tickets(*[(r, 7) for r, _ in spread]), RULES)) == [[1, 2, 3, 4]]
    # one impatient ticket is not enough: the smallest window of the group counts
    mixed = [(1000, 9), (1150, 9), (1300, 9), (1450, 0)]
    assert ids(form_groups(tickets(*mixed), RULES)) == []


def test_bots_fill_after_max_wait():
    assert form_groups(tickets((1200, 9.9)), RULES) == []
    groups = form_groups(tickets((1200, 10)), RULES)
    assert ids(groups) == [[1]]  # 3 seats for bots
    groups = form_groups(tickets((1200, 12), (1210, 1), (1900, 0)), RULES)
    assert ids(groups) == [[1, 2]]  # the overdue ticket takes its close neighbour along


def test_modes_never_mix():
    ts = tickets(*[(1000, 0)] * 2, mode="arena") + tickets(*[(1000, 0)] * 2, mode="sprint", start=10)
    assert form_groups(ts, RULES) == []
    ts = tickets(*[(1000, 0)] * 4, mode="arena") + tickets(*[(1000, 0)] * 4, mode="sprint", start=10)
    assert {g[0].mode for g in form_groups(ts, RULES)} == {"arena", "sprint"}


def test_every_ticket_at_most_once_and_groups_valid():
    rng = random.Random(7)
    ts = [Waiting(i, i, rng.gauss(1200, 200), rng.uniform(0, 15), rng.choice(["a", "b"]))
          for i in range(2000)]
    groups = form_groups(ts, RULES)
    seen = [t.ticket_id for g in groups for t in g]
    assert len(seen) == len(set(seen)) and len(seen) > 1000
    for g in groups:
        assert 1 <= len(g) <= RULES.size and len({t.mode for t in g}) == 1
        spread = max(t.rating for t in g) - min(t.rating for t in g)
        assert spread <= min(RULES.window(t.wait) for t in g) + 1e-9
        if len(g) < RULES.size:
            assert any(t.wait >= RULES.max_wait for t in g)


def test_each_mode_has_its_own_size():
    rules = Rules(size=4, max_wait=10, sizes={"duel": 2, "big": 6})
    ts = (tickets(*[(1000, 0)] * 3, mode="duel") + tickets(*[(1000, 0)] * 7, mode="big", start=10)
          + tickets(*[(1000, 0)] * 4, mode="other", start=20))
    sizes = sorted((g[0].mode, len(g)) for g in form_groups(ts, rules))
    # duel: one full pair (the third waits); big: one full six; other: the default size 4
    assert sizes == [("big", 6), ("duel", 2), ("other", 4)]
    assert rules.size_of("duel") == 2 and rules.size_of("unknown") == 4
