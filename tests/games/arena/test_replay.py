"""The Arena's determinism: a seed plus the input log reproduce a long, messy match exactly
(tests/games/test_every_game.py checks the same, shorter, for every registered game)."""

from __future__ import annotations

import random

import msgpack
import pytest

from engine.game import GameFull
from engine.recording import Recorder
from engine.replay import InputLog, ReplayError, replay
from games.arena import GAME
from games.arena.game import MODES, Arena

CFG = MODES["arena"].replace(sim_hz=30, time_limit=100, score_limit=10_000)   # 3000 ticks


def weird_input(r: random.Random) -> tuple[int, ...]:
    """Mostly sane controls, sometimes far out of range, clamped as the room does."""
    big = 10 ** r.randint(1, 16) if r.random() < 0.2 else 100   # msgpack ints: 64 bits
    return GAME.clamp((r.randint(-big, big), r.randint(-big, big),
                       r.randint(-10 * big, 10 * big) * 40, r.randint(-10, 300)))


def play(seed: int, ticks: int) -> tuple[Recorder, dict]:
    r = random.Random(seed)
    game = Recorder(Arena(CFG, seed), GAME, "arena", seed, config=CFG)
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
                game.submit(pid, seqs[pid], weird_input(r))
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
    assert sum(r.stats[0] for r in want[1]) > 0   # kills
    assert replay("arena", seed, game.log, CFG) == want
    # the log survives a trip through msgpack (how a node would store it)
    rows = msgpack.unpackb(msgpack.packb(game.log.to_rows()), strict_map_key=False)
    assert replay("arena", seed, InputLog.from_rows(rows), CFG) == want
    # and it is the seed that matters: another seed is another match
    assert replay("arena", seed + 1000, game.log, CFG) != want


def test_replay_of_a_prefix_matches_the_game_at_that_tick() -> None:
    game, _ = play(9, 400)
    mid = (game.entities(), game.results())
    log = InputLog(list(game.log.records), game.log.end_tick)
    game.submit(1, 10**6, (100, 0, 0, 1))
    for _ in range(50):
        game.step()
    assert replay("arena", 9, log, CFG) == mid


def test_a_log_that_does_not_fit_is_refused() -> None:
    log = InputLog([(0, "join", 1, "a", False, 7)], 10)
    with pytest.raises(ReplayError):
        replay("arena", 1, log, CFG)
    with pytest.raises(ReplayError):
        replay("arena", 1, InputLog([(0, "dance", 1)], 10), CFG)
    with pytest.raises(ReplayError):
        replay("arena", 1, InputLog([(20, "leave", 1)], 10), CFG)
