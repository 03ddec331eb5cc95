"""Snapshots (engine/snapshot.py) for every registered game: a game restored from its
snapshot at any tick goes on exactly as the original and as the replay of its input log;
the bytes are checked like untrusted input."""

from __future__ import annotations

import contextlib
import random

import msgpack
import pytest

from engine import snapshot
from engine.game import Game, GameDef, GameFull
from engine.recording import Recorder
from engine.registry import registry
from engine.replay import replay
from engine.snapshot import SnapshotError
from tests.games.test_every_game import Cfg, Null, null_game, random_values

GAMES = list(registry().games.values())


def ids(value):
    return value.name if hasattr(value, "name") else None


class Script:
    """Random room calls, the same for every game fed from it: joins (humans and bots),
    leaves, connection changes, inputs with per-connection seqs."""

    def __init__(self, gdef: GameDef, seed: int) -> None:
        self.gdef, self.r = gdef, random.Random(seed)
        self.seqs: dict[int, int] = {}
        self.players: list[int] = []

    def calls(self, game) -> list[tuple]:
        """This tick's calls, decided from `game` (the original), to apply to every copy."""
        r, out = self.r, []
        if r.random() < 0.05 or len(self.players) < 2:
            bot = r.random() < 0.4
            out.append(("join", r.randint(1, 10**6), f"p{r.randint(0, 99)}", bot))
        if r.random() < 0.02 and len(self.players) > 2:
            out.append(("leave", r.choice(self.players)))
        if r.random() < 0.03 and self.seqs:
            out.append(("connected", r.choice(sorted(self.seqs)), r.random() < 0.6))
        for pid in sorted(self.seqs):
            for _ in range(r.choice([0, 1, 1, 2, 3])):
                out.append(("input", pid, None, random_values(self.gdef, r)))
        return out

    def apply(self, games: list, calls: list[tuple]) -> None:
        for call in calls:
            if call[0] == "join":
                got = set()
                for g in games:
                    try:
                        got.add(g.join(call[1], call[2], bot=call[3]))
                    except GameFull:
                        got.add(None)
                assert len(got) == 1, f"join gave {got}"
                pid = got.pop()
                if pid is not None:
                    self.players.append(pid)
                    if not call[3]:
                        self.seqs[pid] = 0
            elif call[0] == "leave":
                for g in games:
                    g.leave(call[1])
                self.players.remove(call[1])
                self.seqs.pop(call[1], None)
            elif call[0] == "connected":
                for g in games:
                    g.set_connected(call[1], call[2])
                if call[2]:
                    self.seqs[call[1]] = 0   # a new connection numbers its inputs afresh
            elif call[1] in self.seqs:     # (not if it left earlier in this tick)
                self.seqs[call[1]] += 1
                assert len({g.submit(call[1], self.seqs[call[1]], call[3]) for g in games}) == 1


def state(game) -> tuple:
    return game.tick, game.clock, game.over, game.end_reason, game.entities(), game.results()


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_a_restored_game_goes_on_exactly_like_the_original(gdef: GameDef, seed: int) -> None:
    mode = next(iter(gdef.modes.values()))
    cfg = gdef.config(mode.name, time_limit=max(1, 900 // mode.config.sim_hz))
    r = random.Random(seed)
    original = Recorder(gdef.game(cfg, seed), gdef, mode.name, seed, config=cfg)
    script = Script(gdef, seed)
    cut = r.randrange(0, 800)
    every = r.choice([1, 2, 3])          # events drained every few ticks: some are pending
    mid = seed % 2 == 1                  # cut between this tick's calls and its step: the
    copies: list[Game] = []              # inputs queued for the next step move too

    def cut_here() -> None:
        data = gdef.snapshot(original.game, mode.name)
        copy = gdef.restore(data)
        assert state(copy) == state(original)
        copies.append(copy)
        # a snapshot of the copy is the same bytes: nothing was lost or added (after the
        # same reads: entities() may fill caches)
        assert gdef.snapshot(copy, mode.name) == gdef.snapshot(original.game, mode.name)
        copies.append(gdef.restore(gdef.snapshot(copy, mode.name)))

    while not original.over and original.tick < 900:
        if original.tick == cut and not mid:
            cut_here()
        calls = script.calls(original)
        script.apply([original, *copies], calls)
        if original.tick == cut and mid:
            cut_here()
        for g in (original, *copies):
            g.step()
        if original.tick % every == 0:
            events = original.drain_events()
            assert all(c.drain_events() == events for c in copies)
        assert all(state(c) == state(original) for c in copies), original.tick
    assert copies, "the cut was never reached"
    final = state(original)
    assert all(state(c) == final for c in copies)
    assert replay(mode.name, seed, original.log, cfg, game=gdef) == (final[4], final[5])
    # after the end too
    done = gdef.restore(gdef.snapshot(original.game, mode.name))
    assert state(done) == final and done.drain_events() == original.drain_events()


def played(gdef: GameDef, ticks: int = 200) -> tuple[Game, str]:
    mode = next(iter(gdef.modes.values()))
    game = gdef.new(mode.name, 9)
    for i in range(mode.max_players):
        game.join(i + 1, f"p{i}", bot=i % 2 == 1)
    for _ in range(ticks):
        game.step()
    return game, mode.name


def repack(data: bytes, body: bytes | None = None, **head) -> bytes:
    """`data` with header fields or the body replaced, checksum recomputed."""
    fmt, version, name, mode, tick, _, old = msgpack.unpackb(data)
    fields = dict(fmt=fmt, version=version, name=name, mode=mode, tick=tick)
    fields.update(head)
    body = old if body is None else body
    return msgpack.packb([fields["fmt"], fields["version"], fields["name"], fields["mode"],
                          fields["tick"], snapshot.checksum(body), body])


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_load_gives_the_definition_mode_and_tick(gdef: GameDef) -> None:
    game, mode = played(gdef)
    got = snapshot.load(gdef.snapshot(game, mode))
    assert (got.gdef, got.mode, got.tick) == (gdef, gdef.modes[mode], game.tick)
    assert state(got.game) == state(game)


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_damaged_or_forged_snapshots_raise_snapshot_error_only(gdef: GameDef) -> None:
    game, mode = played(gdef)
    data = gdef.snapshot(game, mode)
    other = next(g for g in [*GAMES, null_game()] if g is not gdef)
    _, _, _, _, _, _, body = msgpack.unpackb(data)
    bad = [
        b"", b"\x00", b"\xc1", msgpack.packb([1, 2, 3]), msgpack.packb({"a": 1}), data[:-1],
        data[:len(data) // 2], bytearray(data),
        repack(data, version=2), repack(data, name="nope"), repack(data, mode="nope"),
        repack(data, tick=game.tick + 1), repack(data, fmt="other"),
        repack(data, body=b"\x93\x01\x02"), repack(data, body=msgpack.packb([[], [3, 0]])),
        # classes that are not the game's: os.system, a builtin, another game's, an object
        # with __class__ set, a slot that does not exist
        repack(data, body=msgpack.packb([[["os", "system", []]], [3, 0]])),
        repack(data, body=msgpack.packb([[["builtins", "dict", []]], [3, 0]])),
        repack(data, body=msgpack.packb([[[other.game.__module__, other.game.__qualname__, []]],
                                         [3, 0]])),
        repack(data, body=msgpack.packb([[["engine.rng", "Rng", ["__class__"]]], [3, 0, 1]])),
        repack(data, body=msgpack.packb([[["engine.rng", "Rng", ["nope"]]], [3, 0, 1]])),
        repack(data, body=msgpack.packb([[], [4, 5]])),             # a ref to nothing
        repack(data, body=msgpack.packb([[], [5, "9" * 1000]])),    # a huge big int
        repack(data, body=msgpack.packb([[], [2, [0], 1]])),        # an unhashable key
        repack(data, body=msgpack.packb([[], [99]])),
    ]
    for b in bad:
        with pytest.raises(SnapshotError):
            snapshot.load(b)
    with pytest.raises(SnapshotError, match="checksum"):
        snapshot.load(data[:-3] + bytes([data[-3] ^ 1]) + data[-2:])
    with pytest.raises(SnapshotError):
        other.restore(data)
    with pytest.raises(SnapshotError):
        snapshot.load(b"\x00" * (snapshot.MAX_SNAPSHOT_BYTES + 1))


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_random_damage_to_the_state_never_raises_anything_else(gdef: GameDef) -> None:
    """Flipped bytes in the body (checksum recomputed, as a forger would): SnapshotError
    or a game, never another exception."""
    game, mode = played(gdef, 50)
    data = gdef.snapshot(game, mode)
    body = msgpack.unpackb(data)[6]
    r = random.Random(5)
    for _ in range(300):
        b = bytearray(body)
        for _ in range(r.randint(1, 4)):
            b[r.randrange(len(b))] = r.randrange(256)
        with contextlib.suppress(SnapshotError):
            snapshot.load(repack(data, body=bytes(b)))


def test_a_state_the_default_cannot_write_down_is_refused_at_snapshot_time() -> None:
    gdef = null_game()
    game = gdef.new("null", 1)
    assert type(gdef.restore(gdef.snapshot(game, "null"))) is Null
    game.hook = lambda: 0
    with pytest.raises(SnapshotError, match="function"):
        gdef.snapshot(game, "null")
    game.hook = random.Random(1)   # a class outside the game's modules
    with pytest.raises(SnapshotError, match="outside"):
        gdef.snapshot(game, "null")
    with pytest.raises(SnapshotError):
        gdef.snapshot(game, "no-such-mode")
    with pytest.raises(SnapshotError):
        registry().game("tag").snapshot(game, "tag")


class Counter(Null):
    """A game with its own snapshot format."""

    def __init__(self, config, seed):
        super().__init__(config, seed)
        self.n, self.shared, self.tick = seed, [], 0

    def step(self):
        self.tick += 1
        self.n += 1

    def snapshot_state(self):
        return {"n": self.n, "tick": self.tick}

    @classmethod
    def restore_state(cls, state):
        game = cls(Cfg(), state["n"])
        game.tick = state["tick"]
        return game


def test_the_default_keeps_shared_references_and_cycles_and_a_game_may_override_it() -> None:
    gdef = null_game()
    game = gdef.new("null", 1)
    box = [1, (2, 3), {"k": {4, 5}}, frozenset({6}), 1 << 70, -(1 << 70), 2.5, b"x", None]
    game.a, game.b, game.me = box, box, game
    box.append(box)
    copy = gdef.restore(gdef.snapshot(game, "null"))
    assert copy.a is copy.b and copy.me is copy and copy.a[-1] is copy.a
    assert copy.a[:-1] == box[:-1] and type(copy.a[1]) is tuple
    own = null_game(game=Counter)
    c = own.new("null", 5)
    c.step()
    back = own.restore(own.snapshot(c, "null"))
    assert (back.n, back.tick) == (6, 1)
