"""engine/clock.py: due steps, bounded catch-up with overruns, drift-free schedule."""

from __future__ import annotations

import random

import pytest

from engine.clock import FixedStep, patch_every

EPS = 1e-6   # wake-ups land a little after a deadline, never exactly on it


def test_first_tick_is_due_at_start_then_one_per_dt() -> None:
    c = FixedStep(start=50.0, dt=0.1)
    assert c.due(50.0) == 1
    c.advance()
    assert c.due(50.05) == 0
    assert c.next_deadline() == pytest.approx(50.1)
    assert c.due(50.1 + EPS) == 1
    c.advance()
    assert c.due(50.35) == 2   # ticks 2 and 3 are due
    c.advance(2)
    assert (c.ticks, c.overruns) == (4, 0)


def test_catch_up_is_bounded_and_the_rest_is_counted_as_overrun() -> None:
    c = FixedStep(start=0.0, dt=0.1, max_catch_up=4)
    c.advance(c.due(0.0))
    n = c.due(2.0 + EPS)   # 20 ticks behind
    assert n == 4 and c.overruns == 16
    c.advance(n)
    # the schedule did not move: the next deadline is still on the grid
    assert c.next_deadline() == pytest.approx(2.1)
    assert c.due(2.05) == 0


@pytest.mark.parametrize("dt", [1 / 30, 1 / 20, 0.1])
def test_schedule_does_not_drift_under_jittery_wakeups(dt: float) -> None:
    r = random.Random(1)
    c = FixedStep(start=1000.0, dt=dt, max_catch_up=4)
    now = 1000.0
    for _ in range(20_000):
        n = c.due(now)
        assert 0 <= n <= 4
        c.advance(n)
        now = c.next_deadline() + EPS + r.random() * dt * 0.9   # late by up to 0.9 dt
    expected = int((now - 1000.0) / dt) + 1
    assert c.ticks + c.due(now) == expected and c.overruns == 0


def test_a_long_stall_skips_but_keeps_the_grid() -> None:
    c = FixedStep(start=0.0, dt=1 / 30, max_catch_up=3)
    c.advance(c.due(0.0))
    c.advance(c.due(10.0 + EPS))   # a 10 s stall: 3 steps now, the rest skipped
    assert c.overruns == 300 - 3 and c.ticks == 301
    assert c.next_deadline() == pytest.approx(301 / 30)


def test_patch_every() -> None:
    assert patch_every(30, 20) == 2
    assert patch_every(30, 15) == 2
    assert patch_every(60, 20) == 3
    assert patch_every(20, 30) == 1
    with pytest.raises(ValueError):
        patch_every(30, 0)
