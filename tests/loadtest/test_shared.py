"""The bots of a room sharing each delta's decode and apply (loadtest.shared) end where
bots that decode and apply every delta on their own end, and where codec.apply_delta
ends: same states, same errors, same counts, for the same streams and divergent ones."""

import asyncio
import copy
import random

import pytest

from engine import codec
from engine.registry import registry
from loadtest.bot import Bot, BotConfig, _Match
from loadtest.shared import KEEP, SharedRooms, apply_copy
from loadtest.stats import Group


def _played(name: str, ticks: int):
    """A match of game `name` full of bots: (tick, keyframe, delta, the state) per tick, the
    state messages encoded as the node does."""
    gdef = registry().game(name)
    mode_name, mode = next(iter(gdef.modes.items()))
    game = gdef.new(mode_name, 3)
    for i in range(mode.max_players):
        game.join(100 + i, f"p{i}", bot=True)
    prev, prev_tick = game.entities(), game.tick
    out = [(game.tick, codec.encode(codec.Keyframe(game.tick, game.clock, prev, [])), None, prev)]
    for _ in range(ticks):
        game.step()
        cur = game.entities()
        added, removed, updated = codec.make_delta(prev, cur)
        delta = codec.encode_delta(game.tick, prev_tick, game.clock, added, removed, updated, [])
        out.append((game.tick, codec.encode(codec.Keyframe(game.tick, game.clock, cur, [])), delta, cur))
        prev, prev_tick = cur, game.tick
    return out


@pytest.mark.parametrize("name", sorted(registry().games))
def test_apply_copy_follows_codec_apply_delta_over_a_played_match(name):
    """Each patch through encode -> decode as on the wire; the state applied to stays as it was."""
    frames = _played(name, 600)
    mine = codec.decode(frames[0][1], 1 << 20).entities
    changed = 0
    for _, _, delta, cur in frames[1:]:
        msg = codec.decode(delta, 1 << 20)
        changed += len(msg.added) + len(msg.removed) + len(msg.updated)
        before = copy.deepcopy(mine)
        reference = codec.apply_delta(mine, msg.added, msg.removed, msg.updated)
        new = apply_copy(mine, msg.added, msg.removed, msg.updated)
        assert mine == before
        assert new == reference == cur and all(type(v) is tuple for v in new.values())
        mine = new
    assert changed > 100


@pytest.mark.parametrize("updated", [{9: [1, 5]}, {1: [0, 5]}, {1: [3, 5]}, {1: [True, 5]}, {1: ["x", 5]},
                                     {1: [-1, 5]}])
def test_apply_copy_rejects_what_codec_apply_delta_rejects(updated):
    base = {1: (2, 1, 2)}
    with pytest.raises(codec.DecodeError) as expected:
        codec.apply_delta(dict(base), {}, [], updated)
    with pytest.raises(codec.DecodeError) as got:
        apply_copy(base, {}, [], updated)
    assert (got.value.code, got.value.reason) == (expected.value.code, expected.value.reason)
    assert base == {1: (2, 1, 2)}


@pytest.mark.parametrize("updated", [{1: [1]}, {1: 5}, {1: (1, 5)}])
def test_apply_copy_refuses_updates_that_are_not_index_value_pairs(updated):
    with pytest.raises(codec.DecodeError, match="Delta does not apply"):
        apply_copy({1: (2, 1, 2)}, {}, [], updated)


def _reference(stream: list[bytes]) -> tuple[dict, int, int, int]:
    """What a client that decodes everything with `codec` ends with: (state, its tick,
    deltas that did not apply, deltas whose base was not its state)."""
    state, tick, errors, mismatches = {}, -1, 0, 0
    for raw in stream:
        msg = codec.decode(raw, 1 << 20)
        if type(msg) is codec.Keyframe:
            state, tick = msg.entities, msg.tick
        elif msg.base != tick:
            mismatches += 1
        else:
            try:
                state, tick = codec.apply_delta(state, msg.added, msg.removed, msg.updated), msg.tick
            except codec.DecodeError:
                errors, tick = errors + 1, -1
    return state, tick, errors, mismatches


def _bot(shared: SharedRooms | None, index: int) -> tuple[Bot, _Match, Group]:
    groups = {"normal": Group(), "slow": Group()}
    bot = Bot(index, BotConfig("http://127.0.0.1:1"), None, groups, asyncio.Event(), shared=shared)
    m = bot.match = _Match(t_queue=0.0, t_connect=0.0)
    assert bot._on_message(codec.encode(codec.Welcome(index + 1, "m1", "r", 0, {})), m) is codec.Welcome
    return bot, m, groups["normal"]


def _streams(frames) -> dict[str, list[bytes]]:
    """Each bot's payloads: in step, seated later, behind (a delta lost), given a delta that
    does not apply (twice: one of them takes the other's outcome), given another valid
    delta for a tick (its state differs from the others' from then on)."""
    key = {t: k for t, k, _, _ in frames}
    delta = {t: d for t, _, d, _ in frames if d is not None}
    t0, last = frames[0][0], frames[-1][0]

    def deltas(a, b):
        return [delta[t] for t in range(a, b + 1)]

    eid = next(iter(frames[10][3]))
    bad = codec.encode_delta(t0 + 15, t0 + 14, 0, {}, [], {eid: [999, 1]}, [])
    kind, *fields = frames[14][3][eid]
    other = codec.encode_delta(t0 + 15, t0 + 14, 0, {}, [], {eid: [len(fields), "other"]}, [])
    corrupt = [key[t0], *deltas(t0 + 1, t0 + 14), bad, *deltas(t0 + 16, t0 + 30), key[t0 + 30],
               *deltas(t0 + 31, last)]
    return {
        "steady": [key[t0], *deltas(t0 + 1, last)],
        "steady2": [key[t0], *deltas(t0 + 1, last)],
        "late": [key[t0 + 10], *deltas(t0 + 11, last)],
        "behind": [key[t0], *deltas(t0 + 1, t0 + 20), *deltas(t0 + 22, t0 + 30), key[t0 + 30],
                   *deltas(t0 + 31, last)],
        "corrupt": corrupt,
        "corrupt2": list(corrupt),
        "divergent": [key[t0], *deltas(t0 + 1, t0 + 14), other, *deltas(t0 + 16, last)],
    }


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_bots_sharing_a_room_end_as_bots_on_their_own_and_as_the_codec(seed):
    """The same streams, each payload a bytes object of its own, fed to bots that share
    their room and to bots that do not, in a random order each patch, some bots up to
    `KEEP` - 1 patches behind the others now and then (so the one that decodes a payload first
    changes): every shared bot ends with its private twin's state, tick, errors and
    counts, which are codec.apply_delta's."""
    frames = _played(sorted(registry().games)[0], 60)
    streams = _streams(frames)
    rng = random.Random(seed)
    shared = SharedRooms()
    bots = {}
    for i, name in enumerate(streams):
        bots[name] = (_bot(shared, i), _bot(None, i))
    queues = {name: [(codec.decode(raw, 1 << 20).tick, bytes(bytearray(raw))) for raw in stream]
              for name, stream in streams.items()}
    lag = dict.fromkeys(streams, 0)
    for now in range(frames[0][0], frames[-1][0] + KEEP + 2):
        order = list(streams)
        rng.shuffle(order)
        for name in order:
            if rng.random() < 0.1:
                lag[name] = rng.randint(0, KEEP - 1)
            queue = queues[name]
            while queue and queue[0][0] <= now - lag[name]:
                raw = queue.pop(0)[1]
                for bot, m, _ in bots[name]:
                    assert bot._on_message(raw, m) in (codec.Delta, codec.Keyframe)
    assert not any(queues.values())
    shared_total = 0
    for name, ((bot, m, g), (twin, tm, tg)) in bots.items():
        bot.flush_bytes()
        twin.flush_bytes()
        state, tick, errors, mismatches = _reference(streams[name])
        assert m.state_tick == tm.state_tick == tick, name
        if tick >= 0:
            assert m.entities == tm.entities == state, name
        assert g.errors == tg.errors == ({"delta does not apply": errors} if errors else {}), name
        assert g.counters["delta_base_mismatch"] == tg.counters["delta_base_mismatch"] == mismatches, name
        assert g.counters["frames"] == tg.counters["frames"] == len(streams[name])
        assert tg.counters["deltas_shared"] == 0
        shared_total += g.counters["deltas_shared"]
    assert streams["divergent"] and bots["divergent"][0][1].entities != frames[-1][3]
    assert _reference(streams["corrupt"])[2] == 1
    # many deltas were decoded and applied once for the room, not once per bot
    deltas = sum(len(s) for s in streams.values())
    assert shared_total > deltas / 3
    for (bot, m, _), _ in bots.values():
        bot._leave_share(m)
    assert shared.rooms == {}


def test_a_shared_outcome_needs_the_same_bytes_and_the_same_state():
    """A bot whose payload differs by one byte, or whose state is not the one the kept
    outcome came from, applies on its own; one with both takes the outcome, errors included."""
    shared = SharedRooms()
    (a, ma, ga), (b, mb, gb), (c, mc, gc) = (_bot(shared, i) for i in range(3))
    key = codec.encode(codec.Keyframe(10, 0, {1: (1, 5, 6), 2: (2, 7)}, []))
    other_key = codec.encode(codec.Keyframe(10, 0, {1: (1, 5, 9), 2: (2, 7)}, []))
    for bot, m, raw in ((a, ma, key), (b, mb, key), (c, mc, other_key)):
        assert bot._on_message(raw, m) is codec.Keyframe
    good = codec.encode_delta(11, 10, 0, {}, [], {1: [1, 50]}, [])
    for bot, m in ((a, ma), (b, mb), (c, mc)):
        bot._on_message(bytes(bytearray(good)), m)
    assert ma.entities == mb.entities == {1: (1, 50, 6), 2: (2, 7)} and ma.entities is mb.entities
    assert mc.entities == {1: (1, 50, 9), 2: (2, 7)}  # its own state, not the room's
    assert (b._shared_unflushed, c._shared_unflushed) == (1, 0)
    bad = codec.encode_delta(12, 11, 0, {}, [], {2: [5, 1]}, [])
    for bot, m in ((a, ma), (b, mb), (c, mc)):
        bot._on_message(bytes(bytearray(bad)), m)
        assert m.state_tick == -1
    assert ga.errors == gb.errors == gc.errors == {"delta does not apply": 1}
    assert b._shared_unflushed == 2
