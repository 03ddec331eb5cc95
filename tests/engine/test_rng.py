"""The seeded RNG every game draws from."""

from __future__ import annotations

import pytest

from engine.rng import Rng


def test_rng_is_seeded_and_stable() -> None:
    a, b = Rng(42), Rng(42)
    seq = [a.next_u64() for _ in range(5)]
    assert seq == [b.next_u64() for _ in range(5)]
    assert seq != [Rng(43).next_u64() for _ in range(5)]
    r = Rng(-1)
    draws = [r.below(6) for _ in range(6000)]
    assert set(draws) == set(range(6)) and min(draws.count(k) for k in range(6)) > 800
    assert all(3 <= r.between(3, 5) <= 5 for _ in range(100))
    with pytest.raises(ValueError):
        r.below(0)
