"""Elo generalised to free-for-all placement, by pairwise comparisons.

Each rated player i is compared with every other rated player j of the match:

    S_ij = 1 if i placed better than j (smaller placement), 1/2 on a tie, 0 otherwise
    E_ij = 1 / (1 + 10 ** ((R_j - R_i) / 400))
    R_i' = R_i + K / (N - 1) * sum_j (S_ij - E_ij)

N is the number of rated players; dividing by N - 1 keeps one match worth at most K
points whatever its size. The changes sum to zero. A match with fewer than two rated
players changes nothing (bots are not rated).
"""

from __future__ import annotations

from collections.abc import Sequence


def expected(r_i: float, r_j: float) -> float:
    return 1.0 / (1.0 + 10.0 ** ((r_j - r_i) / 400.0))


def ffa_deltas(ratings: Sequence[float], placements: Sequence[int], k: float) -> list[float]:
    """The rating change of each player, in input order."""
    n = len(ratings)
    if n != len(placements):
        raise ValueError("one placement per rating")
    if n < 2:
        return [0.0] * n
    deltas = []
    for i in range(n):
        total = 0.0
        for j in range(n):
            if i == j:
                continue
            if placements[i] < placements[j]:
                s = 1.0
            elif placements[i] == placements[j]:
                s = 0.5
            else:
                s = 0.0
            total += s - expected(ratings[i], ratings[j])
        deltas.append(k / (n - 1) * total)
    return deltas


def placement_points(players: int, placement: int) -> int:
    """Weekly leaderboard points: players - placement + 1 (first of 4 gets 4, last 1)."""
    return max(players - placement + 1, 0)
