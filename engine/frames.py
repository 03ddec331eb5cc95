"""Frames files: a replay turned into what a spectator of the live match received, for
watching it again in the browser with the game's own module (issue 14, "Watch").

    data = build_frames(replay)          # replay: engine.recording.load_replay(...)
    result, data = verify_and_build(replay)   # with engine.replay.verify's result, one run
    doc = load_frames(data)              # the map below (tests, tools)

Built once (e.g. when the lobby stores a replay) and served as a static file. The file is
a zlib stream (RFC 1950: HTTP's `Content-Encoding: deflate`, the browser's
`DecompressionStream("deflate")`) of one msgpack map with string keys:

| key | value |
| --- | --- |
| `format`, `version` | "frames", 1 |
| `game`, `mode`, `match_id` | as in the replay |
| `config` | the `welcome.config` map the room sent (`welcome_config`), schema included |
| `patch_every` | ticks per patch |
| `keyframe_every` | patches per keyframe |
| `frames` | one wire message per patch (bin, docs/protocol.md): a keyframe (11) first and every `keyframe_every` patches, a delta (12) against the previous patch otherwise, events as the room sent them (room events `joined`/`left` first, then the game's); then the `match_end` event message (13), unless truncated |
| `ticks` | the tick of each frame |
| `keyframes` | the indexes of the keyframes in `frames` (seek: the last keyframe at or before the tick, then the deltas after it) |
| `scoreboard` | `[[tick, rows], ...]`: the results (match_end rows) at every patch where they changed |
| `results` | the final rows; `end`: `[status, reason]`; `truncated`: whether the replay stops early |
"""

from __future__ import annotations

import zlib
from typing import TYPE_CHECKING, Any

import msgpack

from engine import codec
from engine.clock import patch_every
from engine.game import Game, GameDef
from engine.replay import (
    MAX_VERIFY_TICKS,
    ReplayError,
    ReplayTruncated,
    Verified,
    check_length,
    verified,
)

if TYPE_CHECKING:
    from engine.recording import Replay

FORMAT, VERSION = "frames", 1
KEYFRAME_SECONDS = 5
MAX_FRAMES_BYTES = 64 << 20   # load_frames refuses more (decompressed)


def welcome_config(gdef: GameDef, mode: str, config: Any, game: Game, match_id: str) -> dict:
    """`welcome.config` (docs/protocol.md): the game's keys, then the room's, which win."""
    return {**game.client_config(), "game": gdef.name, "mode": mode,
            "protocol": codec.PROTOCOL_VERSION, "sim_hz": config.sim_hz,
            "patch_hz": config.patch_hz, "time_limit": config.time_limit,
            "max_players": config.max_players, "reconnect_window": config.reconnect_window,
            "max_input_rate": config.max_input_rate, "match_id": match_id,
            "schema": gdef.schema()}


def build_frames(replay: Replay, *, keyframe_seconds: float = KEYFRAME_SECONDS,
                 match_id: str | None = None, max_ticks: int = MAX_VERIFY_TICKS) -> bytes:
    """The frames file of `replay` (see the module's docstring). Re-runs the match as a
    room does: records at tick t before step t+1, a patch every `patch_every` ticks and at
    the end. Raises `ReplayError` if the log does not fit the game or is longer than
    `max_ticks`."""
    return _build(replay, keyframe_seconds, match_id, max_ticks)[1]


def verify_and_build(replay: Replay, *, keyframe_seconds: float = KEYFRAME_SECONDS,
                     match_id: str | None = None, max_ticks: int = MAX_VERIFY_TICKS,
                     ) -> tuple[Verified, bytes]:
    """`(verify(replay), build_frames(replay))` in one run of the match instead of two
    (what a host storing a replay does). Raises as `verify`: `ReplayTruncated` for a
    truncated replay (`build_frames` alone still gives its frames)."""
    if replay.truncated:
        raise ReplayTruncated(f"the replay stops at tick {replay.end_tick} of {replay.ticks}")
    game, data = _build(replay, keyframe_seconds, match_id, max_ticks)
    return verified(replay, game), data


def _build(replay: Replay, keyframe_seconds: float, match_id: str | None,
           max_ticks: int) -> tuple[Game, bytes]:
    check_length(replay, max_ticks)
    try:
        return _run(replay, keyframe_seconds, match_id)
    except ReplayError:
        raise
    except Exception as e:   # a log or config the game cannot take
        raise ReplayError(f"the game failed on this replay: {e!r}") from None


def _run(replay: Replay, keyframe_seconds: float, match_id: str | None) -> tuple[Game, bytes]:
    gdef, config = replay.gdef, replay.config
    match_id = replay.match_id if match_id is None else match_id
    game = gdef.game(config, replay.seed)
    if game.tick != replay.start:
        raise ReplayError(f"the replay starts at tick {replay.start}, a new match at {game.tick}")
    every = patch_every(config.sim_hz, config.patch_hz)
    key_every = max(1, round(keyframe_seconds * config.sim_hz / every))
    encode, encode_delta, make_delta = codec.encode, codec.encode_delta, codec.make_delta
    frames: list[bytes] = []
    ticks: list[int] = []
    keys: list[int] = []
    board: list[list] = []
    last_rows: list | None = None
    room_events: list[list] = []
    prev: dict = {}
    prev_tick = 0
    records, i, n = replay.log.records, 0, len(replay.log.records)
    end = replay.end_tick
    try:
        while True:
            while i < n and records[i][0] == game.tick:
                rec = records[i]
                i += 1
                kind = rec[1]
                if kind == "input":
                    game.submit(rec[2], rec[3], rec[4])
                elif kind == "join":
                    pid = game.join(rec[2], rec[3], bot=rec[4])
                    if pid != rec[5]:
                        raise ReplayError(f"join at tick {rec[0]} gave id {pid}, the log says {rec[5]}")
                    room_events.append([codec.EV_JOINED, pid, rec[3]])
                elif kind == "leave":
                    game.leave(rec[2])
                    room_events.append([codec.EV_LEFT, rec[2]])
                else:
                    game.set_connected(rec[2], rec[3])
            if game.tick >= end or game.over:
                break
            game.step()
            if game.tick % every and not game.over:
                continue
            entities = game.entities()
            events = game.drain_events()
            if room_events:
                events, room_events = room_events + events, []
            tick, clock = game.tick, game.clock
            if len(frames) % key_every == 0:
                keys.append(len(frames))
                frames.append(encode(codec.Keyframe(tick, clock, entities, events)))
            else:
                frames.append(encode_delta(tick, prev_tick, clock,
                                           *make_delta(prev, entities), events))
            ticks.append(tick)
            prev, prev_tick = entities, tick
            rows = [r.row() for r in game.results()]
            if rows != last_rows:
                board.append([tick, rows])
                last_rows = rows
    except ReplayError:
        raise
    except Exception as e:
        raise ReplayError(f"the game failed on this replay at tick {game.tick}: {e!r}") from None
    if i < n:
        raise ReplayError(f"{n - i} records after the end of the game")
    results = [r.row() for r in game.results()]
    status, reason = replay.status, replay.reason
    if status == "running":
        status, reason = ("finished", game.end_reason) if game.over else ("aborted", "aborted")
    if not replay.truncated:
        frames.append(encode(codec.Event(game.tick, [[codec.EV_MATCH_END, reason, results]])))
        ticks.append(game.tick)
    doc = {"format": FORMAT, "version": VERSION, "game": gdef.name, "mode": replay.mode,
           "match_id": match_id, "config": welcome_config(gdef, replay.mode, config, game, match_id),
           "patch_every": every, "keyframe_every": key_every, "frames": frames, "ticks": ticks,
           "keyframes": keys, "scoreboard": board, "results": results, "end": [status, reason],
           "truncated": replay.truncated}
    return game, zlib.compress(msgpack.packb(doc, use_bin_type=True), 9)


def load_frames(data: bytes) -> dict:
    """The map of a frames file (ValueError if it is not one)."""
    z = zlib.decompressobj()
    try:
        raw = z.decompress(data, MAX_FRAMES_BYTES + 1)
        doc = msgpack.unpackb(raw, raw=False, strict_map_key=False)
    except Exception as e:
        raise ValueError(f"not a frames file: {e!r}") from None
    if len(raw) > MAX_FRAMES_BYTES or type(doc) is not dict or doc.get("format") != FORMAT:
        raise ValueError("not a frames file")
    return doc
