"""Determinism: a seed plus the input log reproduce a long, messy match exactly."""

from __future__ import annotations

import random

import msgpack
import pytest

from engine.arena import MODES, Arena
from engine.game import GameFull, PlayerInput
from engine.replay import InputLog, Recorder, ReplayError, replay
from engine.rng import Rng

CFG = MODES["arena"].replace(sim_hz=30, time_limit=100, score_limit=10_000)   # 3000 ticks


def weird_input(r: random.Random, seq: int) -> PlayerInput:
    """Mostly sane controls, sometimes out of range, stale or malformed."""
    roll = r.random()
    if roll < 0.05:
        return PlayerInput(r.choice([True, 1.5, None, -3]), 0, 0, 0, 1)
    if roll < 0.1:
        return PlayerInput(seq - r.randint(0, 3), 0, 0, 0, 0)   # stale seq
    big = 10 ** r.randint(1, 16) if roll < 0.2 else 100   # msgpack ints stay within 64 bits
    return PlayerInput(seq, r.randint(-big, big), r.randint(-big, big),
                       r.randint(-10 * big, 10 * big) * 40, r.randint(0, 255))


def play(seed: int, ticks: int) -> tuple[Recorder, dict]:
    r = random.Random(seed)
    game = Recorder(Arena(CFG, seed))
    seqs: dict[int, int] = {}
    for i in range(3):
        seqs[game.join(100 + i, f"human{i}")] = 0
        game.join(0, f"bot{i}", bot=True)
    stats = {"joins": 0, "leaves": 0, "inputs": 0}
    for _ in range(ticks):
        if r.random() < 0.01:
            try:
                if r.random() < 0.5:
                    seqs[game.join(r.randint(1, 10**6), "late")] = 0
                else:
                    game.join(0, "latebot", bot=True)
                stats["joins"] += 1
            except GameFull:
                pass
        if r.random() < 0.006:
            pids = sorted(p for p, f in game.entities().items() if f[0] == 1)
            if len(pids) > 2:
                victim = r.choice(pids)
                game.leave(victim)
                seqs.pop(victim, None)
                stats["leaves"] += 1
        if r.random() < 0.005 and seqs:
            game.set_connected(r.choice(sorted(seqs)), r.random() < 0.5)
        for pid in list(seqs):
            for _ in range(r.choice([0, 0, 1, 1, 1, 2, 5, 12])):
                seqs[pid] += 1
                game.submit(pid, weird_input(r, seqs[pid]))
                stats["inputs"] += 1
        game.step()
        game.drain_events()
    return game, stats


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_replay_reproduces_a_long_random_match(seed: int) -> None:
    game, stats = play(seed, 3000)
    assert stats["joins"] > 5 and stats["leaves"] > 5 and stats["inputs"] > 5000
    assert game.tick == 3000 and game.over and game.end_reason == "time"
    want = (game.entities(), game.results())
    assert sum(r.kills for r in want[1]) > 0
    assert replay(CFG, seed, game.log) == want
    # the log survives a trip through msgpack (how a node would store it)
    rows = msgpack.unpackb(msgpack.packb(game.log.to_rows()), strict_map_key=False)
    assert replay(CFG, seed, InputLog.from_rows(rows)) == want
    # and it is the seed that matters: another seed is another match
    assert replay(CFG, seed + 1000, game.log) != want


def test_replay_of_a_prefix_matches_the_game_at_that_tick() -> None:
    game, _ = play(9, 400)
    mid = (game.entities(), game.results())
    log = InputLog(list(game.log.records), game.log.end_tick)
    game.submit(1, PlayerInput(10**6, 100, 0, 0, 1))
    for _ in range(50):
        game.step()
    assert replay(CFG, 9, log) == mid


def test_a_log_that_does_not_fit_is_refused() -> None:
    log = InputLog([(0, "join", 1, "a", False, 7)], 10)
    with pytest.raises(ReplayError):
        replay(CFG, 1, log)
    with pytest.raises(ReplayError):
        replay(CFG, 1, InputLog([(0, "dance", 1)], 10))
    with pytest.raises(ReplayError):
        replay(CFG, 1, InputLog([(20, "leave", 1)], 10))


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
