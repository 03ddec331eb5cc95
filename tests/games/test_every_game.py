"""The generic checks every registered game passes (parametrised over the registry):
deterministic replay, the codec round trip of its real states and its input spec, a
bots-only match to a result; plus the rules define() and the registry enforce."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine import codec
from engine.clock import patch_every
from engine.game import (
    DefinitionError,
    EntityKind,
    EventKind,
    Game,
    GameDef,
    GameFull,
    InputField,
    Mode,
    ResultColumn,
    define,
)
from engine.recording import Recorder
from engine.registry import RegistryError, UnknownGame, UnknownMode, from_defs, load, registry
from engine.replay import InputLog, replay

GAMES = list(registry().games.values())
MODES = [(g, m) for g in GAMES for m in g.modes.values()]


def ids(value):
    return value.name if hasattr(value, "name") else None


def random_values(gdef: GameDef, r: random.Random) -> tuple[int, ...]:
    """Mostly in range, sometimes far out of it: clamped as the room clamps."""
    raw = []
    for f in gdef.inputs:
        span = f.hi - f.lo
        lo, hi = (f.lo - 3 * span - 5, f.hi + 3 * span + 5) if r.random() < 0.1 else (f.lo, f.hi)
        raw.append(r.randint(lo, hi))
    return gdef.clamp(raw)


def play(gdef: GameDef, mode: Mode, seed: int, ticks: int) -> tuple[Recorder, list, list]:
    """A messy match like a room runs it: two humans sending inputs, bots filling up, a
    disconnect and reconnect, a leave. Returns the recorder, every patch's state and all
    events."""
    r = random.Random(seed)
    game = Recorder(gdef.new(mode.name, seed), gdef, mode.name, seed)
    humans = {game.join(100 + i, f"human{i}"): 0 for i in range(min(2, mode.max_players))}
    for i in range(mode.max_players - len(humans)):
        game.join(0, f"bot{i}", bot=True)
    every = patch_every(mode.config.sim_hz, mode.config.patch_hz)
    states, events = [game.entities()], []
    first = next(iter(humans))
    for t in range(ticks):
        if t == ticks // 3:
            game.set_connected(first, False)
        if t == ticks // 3 + 40:
            game.set_connected(first, True)
            humans[first] = 0   # a new connection numbers its inputs afresh
        if t == 2 * ticks // 3 and len(humans) > 1:
            gone = list(humans)[-1]
            game.leave(gone)
            del humans[gone]
        for pid in humans:
            for _ in range(r.choice([0, 1, 1, 2, 4])):
                humans[pid] += 1
                game.submit(pid, humans[pid], random_values(gdef, r))
        game.step()
        events += game.drain_events()
        if game.tick % every == 0:
            states.append(game.entities())
        if game.over:
            break
    return game, states, events


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_replay_reproduces_the_match(gdef: GameDef) -> None:
    mode = next(iter(gdef.modes.values()))
    game, _, _ = play(gdef, mode, 5, 900)
    want = (game.entities(), game.results())
    assert replay(mode.name, 5, game.log) == want
    assert replay(mode.name, 5, game.log, game=gdef) == want
    rows = msgpack.unpackb(msgpack.packb(game.log.to_rows()), strict_map_key=False)
    assert replay(mode.name, 5, InputLog.from_rows(rows)) == want
    # the same seed, config and log give the same match, another seed another one
    again, _, _ = play(gdef, mode, 5, 900)
    assert (again.entities(), again.results()) == want
    assert replay(mode.name, 6, game.log) != want


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_states_and_events_follow_the_schema_and_survive_the_codec(gdef: GameDef) -> None:
    mode = next(iter(gdef.modes.values()))
    game, states, events = play(gdef, mode, 11, 900)
    kinds = {e.kind: e for e in gdef.entities}
    for state in states:
        for eid, ent in state.items():
            assert 0 <= eid < 65536 and type(ent) is tuple
            spec = kinds[ent[0]]
            assert len(ent) == 1 + len(spec.fields), (spec.name, ent)
            for name, value in zip(spec.fields, ent[1:], strict=True):
                if name == "name":
                    assert type(value) is str and len(value) <= 24
                else:
                    assert type(value) is int and -(2**63) <= value < 2**63, (spec.name, name)
    # every player's own entity has the id join() returned and an ack field, if declared
    acked = [k for k in gdef.entities if k.ack]
    humans = [r for r in game.results() if not r.bot]
    if acked:
        last = states[-1]
        assert any(last[r.player_id][acked[0].index(acked[0].ack)] > 0
                   for r in humans if r.player_id in last), "no input was ever acked"
    codes = {e.code: e for e in gdef.events}
    for ev in events:
        assert type(ev) is list and ev[0] in codes and len(ev) == 1 + len(codes[ev[0]].fields)
    # keyframes and deltas of the real states, through bytes
    held = codec.decode(codec.encode(codec.Keyframe(1, 2, states[0], [])), 1 << 20).entities
    assert held == states[0]
    for prev, cur in zip(states, states[1:], strict=False):
        got = codec.decode(codec.encode(codec.delta_message(3, 2, 1, prev, cur, events[:3])),
                           1 << 20)
        held = codec.apply_delta(held, got.added, got.removed, got.updated)
        assert held == cur
    # the schema is plain msgpack (string keys, arrays)
    schema = gdef.schema()
    assert msgpack.unpackb(msgpack.packb(schema)) == schema
    config = game.client_config()
    assert all(type(k) is str for k in config) and msgpack.unpackb(msgpack.packb(config)) == config


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_the_input_spec_clamps_and_the_codec_carries_it(gdef: GameDef) -> None:
    n = len(gdef.inputs)
    inside = tuple(f.lo for f in gdef.inputs)
    assert gdef.clamp(inside) == inside
    assert gdef.clamp(tuple(f.hi for f in gdef.inputs)) == tuple(f.hi for f in gdef.inputs)
    for i, f in enumerate(gdef.inputs):
        for v in (f.lo - 1, f.hi + 1, f.lo - 10**12, f.hi + 10**12):
            got = gdef.clamp(inside[:i] + (v,) + inside[i + 1:])[i]
            assert f.lo <= got <= f.hi
            if not f.wrap:
                assert got == (f.lo if v < f.lo else f.hi)
        if f.wrap:
            assert gdef.clamp(inside[:i] + (f.hi + 1,) + inside[i + 1:])[i] == f.lo
            assert gdef.clamp(inside[:i] + (f.lo - 1,) + inside[i + 1:])[i] == f.hi
    with pytest.raises(ValueError):
        gdef.clamp(inside + (0,))
    r = random.Random(3)
    for _ in range(200):
        values = random_values(gdef, r)
        assert codec.decode(codec.encode(codec.Input(7, values))) == codec.Input(7, values)
        assert len(values) == n


def reference_clamp(gdef: GameDef, values: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for f, v in zip(gdef.inputs, values, strict=True):
        if f.wrap:
            out.append((v - f.lo) % (f.hi - f.lo + 1) + f.lo)
        else:
            out.append(min(max(v, f.lo), f.hi))
    return tuple(out)


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_clamp_matches_its_definition(gdef: GameDef, data) -> None:
    """The fast in-range path and the slow path agree with the documented rule."""
    values = tuple(data.draw(st.one_of(st.integers(f.lo, f.hi), st.integers(-(2**64), 2**64)))
                   for f in gdef.inputs)
    assert gdef.clamp(values) == reference_clamp(gdef, values)
    assert gdef.clamp(list(values)) == reference_clamp(gdef, values)


@pytest.mark.parametrize(("gdef", "mode"), MODES, ids=lambda v: v.name)
def test_a_bots_only_match_plays_to_a_result(gdef: GameDef, mode: Mode) -> None:
    game = gdef.new(mode.name, 3)
    pids = [game.join(0, f"bot{i}", bot=True) for i in range(mode.max_players)]
    assert len(set(pids)) == len(pids) and all(1 <= p <= 999 for p in pids)
    with pytest.raises(GameFull):
        game.join(0, "one too many", bot=True)
    limit = mode.config.time_limit * mode.config.sim_hz
    events = []
    while not game.over:
        assert game.tick <= limit and game.clock == limit - game.tick
        game.step()
        events += game.drain_events()
    assert game.end_reason and game.clock == limit - game.tick
    assert events, "the bots did nothing worth an event"
    results = game.results()
    assert sorted(r.player_id for r in results) == sorted(pids)
    for r in results:
        row = r.row()
        assert len(row) == 6 + len(gdef.results) and row[5] is True and r.user_id == 0
        assert all(type(v) is int for v in r.stats)
    assert results[0].placement == 1
    for a, b in zip(results, results[1:], strict=False):
        assert a.score >= b.score
        assert b.placement == (a.placement if a.score == b.score else results.index(b) + 1)


def test_modes_are_unique_across_the_registry_and_looked_up_by_name() -> None:
    reg = registry()
    if not os.environ.get("GAMES"):
        assert list(reg.games) == ["arena", "tag"]
    for gdef, mode in MODES:
        assert reg.mode(mode.name) == (gdef, mode)
        assert reg.game(gdef.name) is gdef
    with pytest.raises(UnknownMode):
        reg.mode("nope")
    with pytest.raises(UnknownGame):
        reg.game("nope")
    assert isinstance(UnknownMode("x"), KeyError)


# --- define() and the registry refuse what breaks the rules -----------------------------------

@dataclass(frozen=True)
class Cfg:
    sim_hz: int = 10
    patch_hz: int = 5
    time_limit: int = 5
    max_players: int = 4
    reconnect_window: int = 5
    max_input_rate: int = 30


class Null(Game):
    def __init__(self, config, seed):
        self.config = config

    def join(self, user_id, name, *, bot=False):
        return 1

    def leave(self, player_id): ...
    def set_connected(self, player_id, connected): ...
    def submit(self, player_id, seq, values):
        return False

    def step(self): ...
    def entities(self):
        return {}

    def drain_events(self):
        return []

    clock = property(lambda self: 0)
    over = property(lambda self: True)
    end_reason = property(lambda self: "time")

    def results(self):
        return []

    def client_config(self):
        return {}


def null_game(name: str = "null", modes: tuple[str, ...] = ("null",), **changes) -> GameDef:
    args = dict(name=name, title="Null", game=Null, modes=[Mode(m, Cfg(), 1, 4) for m in modes],
                entities=[EntityKind(1, "dot", ("x", "y", "ack", "name"), ("x", "y"), "ack")],
                events=[EventKind(16, "blink", ("who",))], inputs=[InputField("b", 0, 1)],
                results=[ResultColumn("blinks", "Blinks")])
    args.update(changes)
    return define(**args)


def test_a_valid_definition_is_accepted() -> None:
    d = null_game()
    assert d.browser.endswith("tests/games/browser.js")
    assert d.schema()["entities"][0] == {"kind": 1, "name": "dot", "fields": ["x", "y", "ack", "name"],
                                         "interpolate": ["x", "y"], "ack": "ack"}
    assert d.new("null", 1, max_players=3, not_a_field=1).config.max_players == 3


@pytest.mark.parametrize("bad", [
    lambda: null_game(name="Null"),                       # game names are lower case
    lambda: null_game(name="a" * 17),                     # at most 16 chars
    lambda: null_game(name="9lives"),
    lambda: null_game(modes=("x" * 17,)),                 # mode names likewise
    lambda: null_game(modes=("a b",)),
    lambda: null_game(modes=("same", "same")),            # duplicate mode in a game
    lambda: null_game(modes=()),
    lambda: null_game(events=[EventKind(3, "end", ())]),  # the room's event codes
    lambda: null_game(events=[EventKind(15, "x", ())]),
    lambda: null_game(events=[EventKind(128, "x", ())]),
    lambda: null_game(events=[EventKind(16, "a", ()), EventKind(16, "b", ())]),
    lambda: null_game(entities=[EntityKind(0, "dot", ("x",))]),
    lambda: null_game(entities=[EntityKind(128, "dot", ("x",))]),
    lambda: null_game(entities=[EntityKind(1, "a", ("x",)), EntityKind(1, "b", ("x",))]),
    lambda: null_game(entities=[EntityKind(1, "dot", ("x", "x"))]),
    lambda: null_game(entities=[EntityKind(1, "dot", ("x",), interpolate=("y",))]),
    lambda: null_game(entities=[EntityKind(1, "dot", ("x", "name"), ack="name")]),
    lambda: null_game(inputs=[InputField("b", 2, 1)]),
    lambda: null_game(inputs=[InputField("b", 0, 1), InputField("b", 0, 1)]),
    lambda: null_game(inputs=[]),
    lambda: null_game(results=[ResultColumn("score", "Score")]),   # score is common to all
    lambda: null_game(results=[ResultColumn("Bad Name", "x")]),
    lambda: null_game(modes=(), game=object),
    lambda: Mode("m", Cfg(), 3, 2),                                 # min > max
    lambda: Mode("m", Cfg(), 1, 5),                                 # above config.max_players
    lambda: Mode("m", object(), 1, 1),                              # config not a dataclass
])
def test_define_refuses_bad_declarations(bad) -> None:
    with pytest.raises(DefinitionError):
        bad()


def test_the_registry_refuses_clashes_and_bad_packages() -> None:
    arena = registry().game("arena")
    with pytest.raises(RegistryError, match="already a mode of game 'arena'"):
        from_defs([arena, null_game(modes=("duel",))])
    with pytest.raises(RegistryError, match="two games"):
        from_defs([null_game(), null_game(modes=("other",))])
    with pytest.raises(RegistryError, match="cannot be imported"):
        load("games.arena,games.no_such_game")
    with pytest.raises(RegistryError, match="no GAME"):
        load("engine")
    with pytest.raises(RegistryError):
        load(" , ")
    assert list(load("games.tag").games) == ["tag"]
    assert list(load(" games.tag , games.arena ").games) == ["tag", "arena"]


def test_the_registry_reads_the_games_env_var(monkeypatch) -> None:
    monkeypatch.setenv("GAMES", "games.tag")
    assert list(load().games) == ["tag"]
    monkeypatch.delenv("GAMES")
    assert list(load().games) == ["arena", "tag"]
