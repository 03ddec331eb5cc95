"""Real Arena states through the real codec: what a client rebuilds is what the game has."""

from __future__ import annotations

from engine import codec
from games.arena.game import MODES, Arena


def test_a_client_following_deltas_holds_the_game_state() -> None:
    game = Arena(MODES["arena"], 21)
    for i in range(12):
        game.join(0, f"bot{i}", bot=True)
    human = game.join(5, "ünïcode name")
    held = codec.decode(codec.encode(codec.Keyframe(game.tick, game.clock, game.entities(),
                                                    game.drain_events())), 1 << 20).entities
    base = game.tick
    kinds_seen = set()
    for t in range(900):
        if t == 300:
            late = game.join(6, "late")
        if t == 450:
            game.leave(human)
        game.step()
        if game.tick % game.patch_every:
            continue
        cur = game.entities()
        msg = codec.delta_message(game.tick, base, game.clock, held, cur, game.drain_events())
        got = codec.decode(codec.encode(msg), 1 << 20)
        assert got.base == base
        held = codec.apply_delta(held, got.added, got.removed, got.updated)
        assert held == cur
        for eid in got.updated:   # projectiles and pickups never change in place
            assert cur[eid][0] == 1
        kinds_seen |= {f[0] for f in got.added.values()}
        if human in got.removed:
            kinds_seen.add("left")
        base = game.tick
    assert kinds_seen == {1, 2, 3, "left"}
    assert late in held and human not in held
