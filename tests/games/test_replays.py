"""Replay files (engine/recording.py), verification (engine/replay.py) and frames files
(engine/frames.py) for every registered game: recorded as a room plays, loaded as
untrusted bytes, re-derived, compared with a posted result, watched again."""

from __future__ import annotations

import contextlib
import dataclasses
import random
import zlib

import msgpack
import pytest

from engine import codec
from engine.clock import patch_every
from engine.frames import build_frames, load_frames, verify_and_build
from engine.game import GameDef
from engine.recording import MAX_REPLAY_BYTES, Recorder, load_replay
from engine.registry import registry
from engine.replay import (
    ReplayError,
    ReplayTruncated,
    compare,
    replay,
    result_players,
    run,
    verify,
)
from tests.games.test_snapshot import Script

GAMES = list(registry().games.values())


def ids(value):
    return value.name if hasattr(value, "name") else None


def short(gdef: GameDef, seconds: int = 25):
    mode = next(iter(gdef.modes.values()))
    return mode, gdef.config(mode.name, time_limit=seconds)


def record(gdef: GameDef, seed: int, *, max_bytes: int = MAX_REPLAY_BYTES, seconds: int = 25):
    """A messy match recorded as a room records it, to its end. Returns the recorder, the
    file, and the entities after every tick."""
    mode, cfg = short(gdef, seconds)
    rec = Recorder(gdef.game(cfg, seed), gdef, mode.name, seed, config=cfg, match_id="m1",
                   max_bytes=max_bytes)
    script = Script(gdef, seed)
    states = {0: rec.entities()}
    while not rec.over:
        script.apply([rec], script.calls(rec))
        rec.step()
        states[rec.tick] = rec.entities()
    return rec, rec.finish(), states


def posted(rec: Recorder) -> dict:
    """The result as the node posts it."""
    return {"match_id": "m1", "game": rec.gdef.name, "mode": rec.mode, "status": "finished",
            "reason": rec.end_reason, "ticks": rec.tick,
            "players": result_players(rec.gdef, rec.results())}


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_a_replay_file_re_derives_the_match_and_its_posted_result(gdef: GameDef) -> None:
    rec, data, _ = record(gdef, 1)
    got = load_replay(data)
    mode, cfg = short(gdef)
    assert (got.game, got.mode, got.seed, got.config, got.match_id) == (gdef.name, mode.name, 1,
                                                                        cfg, "m1")
    assert got.overrides == {"time_limit": 25} and not got.truncated
    assert (got.end_tick, got.ticks, got.status, got.reason) == (rec.tick, rec.tick, "finished",
                                                                 rec.end_reason)
    assert any(r[1] == "input" for r in got.log.records)
    assert replay(mode.name, 1, got.log, got.config) == (rec.entities(), rec.results())
    verified = verify(got)
    assert verified.results == rec.results() and verified.over
    assert verified.end_reason == rec.end_reason and verified.ticks == rec.tick
    assert compare(verified, posted(rec)) == []


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_a_forged_result_does_not_match_its_replay(gdef: GameDef) -> None:
    rec, data, _ = record(gdef, 2)
    verified = verify(load_replay(data))
    true = posted(rec)
    forged = [dict(true, players=[dict(p) for p in true["players"]]) for _ in range(6)]
    forged[0]["players"][-1]["score"] += 10                       # scores changed
    forged[1]["players"][0], forged[1]["players"][1] = true["players"][1], true["players"][0]
    forged[2]["players"] = true["players"][:-1]                   # a player dropped
    forged[3]["status"] = "aborted"
    forged[4]["ticks"] += 1
    forged[5]["players"][0]["stats"] = {k: v + 1 for k, v in true["players"][0]["stats"].items()}
    if not forged[5]["players"][0]["stats"]:
        forged[5]["players"][0]["user_id"] += 1
    for f in forged:
        assert compare(verified, f), f
    assert compare(verified, true) == []


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_past_its_bound_the_recording_stops_and_the_match_goes_on(gdef: GameDef) -> None:
    full, _, _ = record(gdef, 3)
    rec, data, states = record(gdef, 3, max_bytes=2048)
    assert rec.truncated and rec.over and rec.tick == full.tick   # the match went on
    assert rec.results() == full.results()
    assert len(zlib.decompress(data)) <= 2048
    got = load_replay(data)
    assert got.truncated and got.end_tick < got.ticks == rec.tick
    with pytest.raises(ReplayTruncated):
        verify(got)
    with pytest.raises(ReplayTruncated):
        verify_and_build(got)
    with pytest.raises(ReplayError):
        verify(load_replay(full.finish()), max_ticks=full.tick - 1)   # too long for the host
    with pytest.raises(ReplayError):
        build_frames(load_replay(full.finish()), max_ticks=full.tick - 1)
    # what it holds is exact: the match up to end_tick
    game = gdef.game(got.config, got.seed)
    entities, _ = run(game, got.log)
    assert game.tick == got.end_tick and entities == states[got.end_tick]
    # a frames file says it stops early and has no match_end
    doc = load_frames(build_frames(got))
    assert doc["truncated"] and doc["ticks"][-1] <= got.end_tick


def rezip(data: bytes, change) -> bytes:
    return zlib.compress(change(zlib.decompress(data)))


def objects(data: bytes) -> list:
    return list(msgpack.Unpacker(__import__("io").BytesIO(zlib.decompress(data)), raw=False,
                                 strict_map_key=False))


def pack(objs: list) -> bytes:
    return zlib.compress(b"".join(msgpack.packb(o) for o in objs))


def test_load_replay_refuses_bad_files_with_replay_error_only() -> None:
    gdef = registry().game(GAMES[0].name)
    _, data, _ = record(gdef, 4, seconds=5)
    objs = objects(data)
    head, tail = objs[0], objs[-1]
    with_head = lambda **kw: pack([dict(head, **kw), *objs[1:]])   # noqa: E731
    bad = [
        b"", b"x", "text", bytearray(data), data[:-1], data + b"\x00", data[:len(data) // 2],
        zlib.compress(b"\x00" * (MAX_REPLAY_BYTES + 10)),          # a zip bomb
        zlib.compress(b"\xc1"), zlib.compress(msgpack.packb([1, 2])),
        pack([head]), pack([head, tail][::-1]),
        with_head(format="other"), with_head(version=2), with_head(game="nope"),
        with_head(mode="nope"), with_head(inputs=99), with_head(seed="1"),
        with_head(config={"no_such_field": [0]}), with_head(config={"time_limit": [99]}),
        with_head(config={"time_limit": [1, "x"]}),
        pack([*objs[:-1], dict(tail, end_tick=tail["ticks"] + 1)]),
        pack([*objs[:-1], dict(tail, end_tick=-1)]),
        pack([*objs[:-1], dict(tail, truncated="no")]),
        pack([head, [0, 9, 1], tail]),                     # an unknown record
        pack([head, [0, 0, 1], tail]),                     # an input cut short
        pack([head, [0, 0, 1, 1, *[f.hi + 1 for f in gdef.inputs]], tail]),   # not clamped
        pack([head, [0, 1, 5, 7, "x", 1], tail]),          # a join with a bad bot flag
        pack([head, [-1, 2, 1], tail]),                    # back in time
        pack([head, [0, 2, 1], [0, 2, 1], tail]),          # twice the same tick
        pack([head, [10**9, 2, 1], tail]),                 # beyond MAX_TICKS
        pack([head, [0, 2, 1], dict(tail, end_tick=0, ticks=0), {"x": 1}]),
    ]
    for b in bad:
        with pytest.raises(ReplayError):
            load_replay(b)    # type: ignore[arg-type]
    with pytest.raises(ReplayError):
        load_replay(data, games=next(g for g in GAMES if g is not gdef) if len(GAMES) > 1
                    else dataclasses.replace(gdef, name="other"))


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_random_bytes_and_damaged_logs_raise_replay_error_only(gdef: GameDef) -> None:
    """Random bytes, and files whose decompressed bytes were damaged (then recompressed, as
    a forger would): `load_replay`, `verify` and `build_frames` raise ReplayError or
    succeed."""
    _, data, _ = record(gdef, 5, seconds=5)
    raw = zlib.decompress(data)
    r = random.Random(6)
    for _ in range(200):
        with pytest.raises(ReplayError):
            load_replay(r.randbytes(r.randint(0, 300)))
    for i in range(300):
        b = bytearray(raw)
        for _ in range(r.randint(1, 3)):
            b[r.randrange(len(b))] = r.randrange(256)
        with contextlib.suppress(ReplayError):
            got = load_replay(zlib.compress(bytes(b)))
            verify(got)
            if i % 5 == 0:
                load_frames(build_frames(got))


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_a_recording_carries_on_after_a_handoff(gdef: GameDef) -> None:
    """Half a match, then the room's snapshot and the recording so far move to a new
    recorder: the file it ends with is the uninterrupted one's."""
    mode, cfg = short(gdef)
    whole = Recorder(gdef.game(cfg, 7), gdef, mode.name, 7, config=cfg, match_id="m1")
    half = Recorder(gdef.game(cfg, 7), gdef, mode.name, 7, config=cfg, match_id="m1")
    script = Script(gdef, 7)
    rooms = [whole, half]
    while not whole.over:
        script.apply(rooms, script.calls(whole))
        if whole.tick == 300:   # between two ticks, this tick's calls made: they move too
            assert half._items[1:], "no call pending at the handoff"
            moved = gdef.restore(gdef.snapshot(half.game, mode.name))
            rooms[1] = half = Recorder.resume(moved, gdef, half.partial())
        for room in rooms:
            room.step()
    a, b = load_replay(whole.finish()), load_replay(half.finish())
    assert a.log == b.log and (a.end_tick, a.ticks, a.status) == (b.end_tick, b.ticks, b.status)
    assert verify(b).results == whole.results()


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_the_frames_file_is_what_a_spectator_saw(gdef: GameDef) -> None:
    rec, data, states = record(gdef, 8)
    frames_file = build_frames(load_replay(data), keyframe_seconds=2)
    doc = load_frames(frames_file)
    # the same file, and verify's result, from one run of the match
    assert verify_and_build(load_replay(data), keyframe_seconds=2) == (verify(load_replay(data)),
                                                                       frames_file)
    mode, cfg = short(gdef)
    every = patch_every(cfg.sim_hz, cfg.patch_hz)
    assert (doc["game"], doc["mode"], doc["match_id"], doc["patch_every"]) == (
        gdef.name, mode.name, "m1", every)
    assert doc["config"]["schema"] == gdef.schema() and doc["config"]["game"] == gdef.name
    frames = [codec.decode(f, 1 << 22) for f in doc["frames"]]
    assert [f.tick for f in frames] == doc["ticks"]
    assert doc["keyframes"][0] == 0 and len(doc["keyframes"]) > 2
    held: dict = {}
    joined, left = set(), set()
    for i, f in enumerate(frames[:-1]):
        if i in doc["keyframes"]:
            assert type(f) is codec.Keyframe
            held = f.entities
        else:
            assert type(f) is codec.Delta and f.base == frames[i - 1].tick
            held = codec.apply_delta(held, f.added, f.removed, f.updated)
        assert f.tick % every == 0 or f.tick == rec.tick
        assert held == states[f.tick], f.tick
        joined |= {e[1] for e in f.events if e[0] == codec.EV_JOINED}
        left |= {e[1] for e in f.events if e[0] == codec.EV_LEFT}
        assert all(e[0] >= 16 or e[0] in (codec.EV_JOINED, codec.EV_LEFT) for e in f.events)
    rows = [r.row() for r in rec.results()]
    assert joined == {r[0] for r in rows} and left <= joined
    end = frames[-1]
    assert type(end) is codec.Event and end.events == [[codec.EV_MATCH_END, rec.end_reason, rows]]
    assert doc["results"] == rows and doc["scoreboard"][-1][1] == rows
    assert doc["end"] == ["finished", rec.end_reason] and not doc["truncated"]
    ticks = [t for t, _ in doc["scoreboard"]]
    assert ticks == sorted(set(ticks))
    # seeking: from any keyframe, the deltas after it give the same states
    k = doc["keyframes"][len(doc["keyframes"]) // 2]
    held = frames[k].entities
    for f in frames[k + 1:-1]:
        if type(f) is codec.Delta:
            held = codec.apply_delta(held, f.added, f.removed, f.updated)
        else:
            held = f.entities
        assert held == states[f.tick]


@pytest.mark.parametrize("gdef", GAMES, ids=ids)
def test_a_replay_carries_its_whole_config_not_a_diff_against_the_recorders_registry(
        gdef: GameDef) -> None:
    """A node whose registry holds other mode defaults than the verifier's (another
    release, a test harness changing a mode in place) still records a file that re-derives
    its match: the file holds every config field, not the node's own diff."""
    mode, cfg = short(gdef, 20)
    drifted = dataclasses.replace(gdef, modes={**gdef.modes, mode.name: dataclasses.replace(
        mode, config=cfg)})                       # the node's registry: 20 s is its default
    seed = 3
    rec = Recorder(drifted.game(cfg, seed), drifted, mode.name, seed, config=cfg)
    script = Script(gdef, seed)
    while not rec.over:
        script.apply([rec], script.calls(rec))
        rec.step()
    got = load_replay(rec.finish())               # loaded against the standard registry
    assert got.config == cfg and got.overrides == {"time_limit": 20}
    assert verify(got).results == rec.results()
