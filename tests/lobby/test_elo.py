"""Elo for free-for-all placement (lobby/ratings/elo.py)."""

from __future__ import annotations

import pytest

from lobby.ratings.elo import expected, ffa_deltas, placement_points


def test_two_players_is_classic_elo():
    # equal ratings: the winner takes K/2
    assert ffa_deltas([1200, 1200], [1, 2], 32) == pytest.approx([16, -16])
    # 400 points apart: the favourite expects 10/11
    e = 1 / (1 + 10 ** (-400 / 400))
    assert expected(1600, 1200) == pytest.approx(e)
    assert ffa_deltas([1600, 1200], [1, 2], 32) == pytest.approx([32 * (1 - e), -32 * (1 - e)])


def test_ffa_pairwise_and_zero_sum():
    deltas = ffa_deltas([1200] * 4, [1, 2, 3, 4], 32)
    # equal ratings: S sums to 3, 2, 1, 0 against E = 1.5 each, scaled by K/(N-1)
    assert deltas == pytest.approx([16, 16 / 3, -16 / 3, -16])
    assert sum(ffa_deltas([1500, 1200, 1350, 1000], [2, 1, 4, 3], 32)) == pytest.approx(0)


def test_ties_and_single_player():
    assert ffa_deltas([1200, 1200], [1, 1], 32) == pytest.approx([0, 0])
    assert ffa_deltas([1300], [1], 32) == [0.0]
    with pytest.raises(ValueError):
        ffa_deltas([1200, 1200], [1], 32)


def test_upset_moves_more_than_expected_win():
    upset = ffa_deltas([1000, 1400], [1, 2], 32)[0]
    expected_win = ffa_deltas([1400, 1000], [1, 2], 32)[0]
    assert upset > 16 > expected_win > 0


def test_placement_points():
    assert [placement_points(4, p) for p in (1, 2, 3, 4)] == [4, 3, 2, 1]
