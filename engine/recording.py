"""Replay files: what a node records of a match as it runs (issue 14), and their loading.

    rec = Recorder(game, gdef, mode_name, seed, config=config)  # use it where the game was
    ...                                  # join / leave / set_connected / submit / step
    data = rec.finish("finished", game.end_reason)              # the replay file, bytes
    replay = load_replay(data)           # untrusted bytes -> Replay, or ReplayError

A replay file is one zlib stream (RFC 1950) of concatenated msgpack objects:

1. the header, a map: `format` "replay", `version` 1, `game`, `mode`, `seed`, `config`
   (every field of the config the match ran with, each value in the tagged form of
   `engine.snapshot.encode_graph`, which keeps tuples: the file does not depend on the
   verifier's registry holding the same mode defaults as the node's), `inputs` (values per input),
   `start` (the first tick: 0), `match_id`;
2. one array per tick that had records, `[dt, op, ..., op, ...]`: `dt` the ticks since
   the previous array's tick (the first: since `start`), then the records of that tick
   in call order, flat: `0 pid dseq *values` an input (`dseq`: seq minus that player's
   previous recorded seq, or seq for its first), `1 user_id name bot pid` a join,
   `2 pid` a leave, `3 pid connected` a connection change;
3. the trailer, a map: `end_tick` (where the log ends: replay runs to it), `ticks` (the
   tick the match reached), `truncated`, `status` ("finished", "aborted", "running"),
   `reason`.

Size bound: the decompressed stream holds at most `max_bytes` (default and maximum
`MAX_REPLAY_BYTES`, 8 MiB). A Recorder that would pass it stops recording at that tick
boundary: the file is the exact log up to `end_tick`, marked `truncated` (the match goes
on; its result cannot be re-derived). `load_replay` refuses a file above
`MAX_FILE_BYTES` or one that decompresses beyond `MAX_REPLAY_BYTES`.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass
from typing import Any

import msgpack

from engine import snapshot
from engine.game import Entities, Event, Game, GameDef, PlayerResult
from engine.registry import Registry, registry
from engine.replay import InputLog, ReplayError

FORMAT, VERSION = "replay", 1
MAX_REPLAY_BYTES = 8 << 20                      # decompressed
MAX_FILE_BYTES = MAX_REPLAY_BYTES + (MAX_REPLAY_BYTES >> 9) + 1024   # zlib's worst case
TRAILER_RESERVE = 512            # bytes of the bound kept for the trailer
MAX_TICKS = 1 << 24              # a log longer than this is refused (4.6 days at 100 Hz)
MAX_NAME = 256
OP_INPUT, OP_JOIN, OP_LEAVE, OP_CONNECTED = 0, 1, 2, 3
_COMPRESS_EVERY = 1 << 16        # raw bytes buffered before they go through zlib


def config_fields(gdef: GameDef, mode: str, config: Any) -> dict:
    """Every field of `config` (the mode's own config when None), by name."""
    base = gdef.modes[mode].config
    if config is None:
        config = base
    if type(config) is not type(base):
        raise ValueError(f"config is a {type(config).__qualname__}, the mode's a "
                         f"{type(base).__qualname__}")
    return {f.name: getattr(config, f.name) for f in dataclasses.fields(base)}


class Recorder:
    """Wraps a game and records every call that changes it into a replay file, as it
    goes (compressed in 64 KiB batches). Use it where you would use the game; the reads
    (`tick`, `entities()`, `results()`, ...) pass through."""

    def __init__(self, game: Game, gdef: GameDef, mode: str, seed: int, *,
                 config: Any = None, match_id: str = "",
                 max_bytes: int = MAX_REPLAY_BYTES) -> None:
        if not 1024 <= max_bytes <= MAX_REPLAY_BYTES:
            raise ValueError(f"max_bytes must be in 1024..{MAX_REPLAY_BYTES}")
        if config is None:
            config = getattr(game, "config", None)
        recorded = config_fields(gdef, mode, config)
        self.game = game
        self.gdef, self.mode, self.seed, self.match_id = gdef, mode, seed, match_id
        self.arity = len(gdef.inputs)
        self.max_bytes = max_bytes
        self.truncated = False
        self.finished = False
        self.end_tick = game.tick
        self._start = game.tick
        self._items: list = [0]          # this tick's array: dt (set when written), records
        self._on = True                  # recording (not truncated)
        self._last_tick = game.tick      # the tick of the last array written
        self._seq: dict[int, int] = {}   # the last seq recorded per player
        self._pack = msgpack.Packer().pack
        self._zip = zlib.compressobj(1)
        self._raw: list[bytes] = []      # not yet compressed
        self._raw_len = 0
        self._out: list[bytes] = []      # compressed
        try:
            config_tree = {k: snapshot.encode_graph(v, ())[1] for k, v in recorded.items()}
        except snapshot.SnapshotError as e:
            raise ValueError(f"a config field cannot be recorded: {e}") from None
        self._write(self._pack({
            "format": FORMAT, "version": VERSION, "game": gdef.name, "mode": mode,
            "seed": seed, "config": config_tree, "inputs": self.arity, "start": game.tick,
            "match_id": match_id}))
        self.size = self._raw_len        # decompressed bytes so far

    # --- the calls that change the game -----------------------------------------------------

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        pid = self.game.join(user_id, name, bot=bot)   # GameFull: nothing to record
        if self._on:
            self._items += (OP_JOIN, user_id, name, bool(bot), pid)
        return pid

    def leave(self, player_id: int) -> None:
        if self._on:
            self._items += (OP_LEAVE, player_id)
        self.game.leave(player_id)

    def set_connected(self, player_id: int, connected: bool) -> None:
        if self._on:
            self._items += (OP_CONNECTED, player_id, bool(connected))
        self.game.set_connected(player_id, connected)

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        """Recorded when `values` has the input spec's arity (the room's always has: it
        clamps them); the game sees every call."""
        if self._on and len(values) == self.arity:
            last = self._seq
            self._items += (OP_INPUT, player_id, seq - last.get(player_id, 0), *values)
            last[player_id] = seq
        return self.game.submit(player_id, seq, values)

    def step(self) -> None:
        if len(self._items) > 1:
            self._end_tick_records()
        self.game.step()
        if not self.truncated:
            self.end_tick = self.game.tick

    # --- the reads pass through -------------------------------------------------------------

    @property
    def tick(self) -> int:
        return self.game.tick

    @property
    def clock(self) -> int:
        return self.game.clock

    @property
    def over(self) -> bool:
        return self.game.over

    @property
    def end_reason(self) -> str:
        return self.game.end_reason

    def entities(self) -> Entities:
        return self.game.entities()

    def drain_events(self) -> list[Event]:
        return self.game.drain_events()

    def results(self) -> list[PlayerResult]:
        return self.game.results()

    def client_config(self) -> dict:
        return self.game.client_config()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.game, name)

    # --- the file ---------------------------------------------------------------------------

    def finish(self, status: str = "finished", reason: str | None = None) -> bytes:
        """The replay file; recording ends (later calls only reach the game)."""
        if not self.finished:
            if len(self._items) > 1:
                self._end_tick_records()
            self.finished, self._on = True, False
            self._trailer = self._trailer_bytes(status, self.game.end_reason if reason is None
                                                else reason)
            self._write(self._trailer)
            self._out.append(self._zip.compress(b"".join(self._raw)))
            self._out.append(self._zip.flush())
            self._raw, self._raw_len = [], 0
            self._file = b"".join(self._out)
            self._out = [self._file]
        return self._file

    def partial(self) -> bytes:
        """The file so far (trailer status "running"), e.g. to carry the recording on to
        another node with the room's snapshot (`Recorder.resume`). Records of the current
        tick are kept for the next array."""
        if self.finished:
            return self._file
        chunk = b""
        if len(self._items) > 1 and self._on:
            items = list(self._items)
            items[0] = self.game.tick - self._last_tick
            chunk = self._pack(items)
        z = self._zip.copy()
        tail = b"".join(self._raw) + chunk + self._trailer_bytes("running", "")
        return b"".join([*self._out, z.compress(tail), z.flush()])

    @classmethod
    def resume(cls, game: Game, gdef: GameDef, data: bytes, *,
               max_bytes: int = MAX_REPLAY_BYTES) -> Recorder:
        """A recorder of `game` (restored from a snapshot at the tick `data` ends at) that
        goes on with the recording `partial()` gave."""
        replay = load_replay(data, games=gdef)
        inner = _Null(replay.start)
        rec = cls(inner, gdef, replay.mode, replay.seed, config=replay.config,   # type: ignore[arg-type]
                  match_id=replay.match_id, max_bytes=max_bytes)
        rec._start = rec._last_tick = replay.start
        for r in replay.log.records:
            while inner.tick < r[0]:
                rec.step()
            if r[1] == "input":
                rec.submit(r[2], r[3], r[4])
            elif r[1] == "join":
                inner.next_pid = r[5]
                rec.join(r[2], r[3], bot=r[4])
            elif r[1] == "leave":
                rec.leave(r[2])
            else:
                rec.set_connected(r[2], r[3])
        if replay.truncated:
            while inner.tick < replay.end_tick:
                rec.step()
            rec.truncated, rec._on, rec.end_tick = True, False, replay.end_tick
        while inner.tick < game.tick:
            rec.step()
        if inner.tick != game.tick:
            raise ReplayError(f"the recording is at tick {inner.tick}, the game at {game.tick}")
        rec.game = game
        return rec

    def _trailer_bytes(self, status: str, reason: str) -> bytes:
        return self._pack({"end_tick": self.end_tick, "ticks": self.game.tick,
                           "truncated": self.truncated, "status": str(status)[:32],
                           "reason": str(reason)[:64]})

    def _end_tick_records(self) -> None:
        """Write the records of this tick as one array, or stop recording if it would take
        the file past `max_bytes` (the log then ends at this tick)."""
        items = self._items
        self._items = [0]
        if self.truncated:
            return
        tick = self.game.tick
        items[0] = tick - self._last_tick
        chunk = self._pack(items)
        if self.size + len(chunk) > self.max_bytes - TRAILER_RESERVE:
            self.truncated, self._on = True, False
            self.end_tick = tick
            return
        self._last_tick = tick
        self._write(chunk)
        self.size += len(chunk)

    def _write(self, raw: bytes) -> None:
        self._raw.append(raw)
        self._raw_len += len(raw)
        if self._raw_len >= _COMPRESS_EVERY:
            self._out.append(self._zip.compress(b"".join(self._raw)))
            self._raw, self._raw_len = [], 0

    @property
    def log(self) -> InputLog:
        """The log recorded so far, as an `InputLog` (for `engine.replay.replay`)."""
        replay = load_replay(self.partial(), games=self.gdef)
        return replay.log


class _Null:
    """A stand-in game for `Recorder.resume`: it only counts ticks and echoes ids."""

    def __init__(self, tick: int) -> None:
        self.tick, self.next_pid, self.config = tick, 0, None

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        return self.next_pid

    def leave(self, player_id: int) -> None: ...
    def set_connected(self, player_id: int, connected: bool) -> None: ...

    def submit(self, player_id: int, seq: int, values: tuple) -> bool:
        return True

    def step(self) -> None:
        self.tick += 1


# --- loading ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Replay:
    """A loaded replay file. `config` is the full config the match ran with."""

    game: str
    mode: str
    seed: int
    config: Any
    overrides: dict
    log: InputLog
    start: int
    end_tick: int
    ticks: int
    truncated: bool
    status: str
    reason: str
    match_id: str
    gdef: GameDef = dataclasses.field(repr=False, compare=False)


def _bad(why: str) -> ReplayError:
    return ReplayError(f"not a valid replay: {why}")


def load_replay(data: bytes, games: Registry | GameDef | None = None) -> Replay:
    """The replay in `data` (untrusted bytes), checked: its game and mode registered in
    `games` (a registry, or the one game expected; default the process registry), its
    config valid for the mode, every record well formed and in tick order. Raises
    `ReplayError` and nothing else."""
    try:
        return _load(data, games)
    except ReplayError:
        raise
    except Exception as e:   # anything a hostile file could provoke
        raise _bad(repr(e)) from None


def _load(data: bytes, games: Registry | GameDef | None) -> Replay:
    if type(data) is not bytes:
        raise _bad("not bytes")
    if len(data) > MAX_FILE_BYTES:
        raise _bad(f"{len(data)} bytes, above {MAX_FILE_BYTES}")
    z = zlib.decompressobj()
    try:
        raw = z.decompress(data, MAX_REPLAY_BYTES + 1)
    except zlib.error:
        raise _bad("not a zlib stream") from None
    if len(raw) > MAX_REPLAY_BYTES or z.unconsumed_tail:
        raise _bad(f"decompresses beyond {MAX_REPLAY_BYTES} bytes")
    if not z.eof or z.unused_data:
        raise _bad("the zlib stream is cut short, or followed by other bytes")
    unpacker = msgpack.Unpacker(raw=False, strict_map_key=False, max_buffer_size=len(raw) + 1)
    unpacker.feed(raw)
    try:
        objs = list(unpacker)
    except Exception:
        raise _bad("not msgpack") from None
    if len(objs) < 2 or type(objs[0]) is not dict or type(objs[-1]) is not dict:
        raise _bad("no header or no trailer")
    head, tail, chunks = objs[0], objs[-1], objs[1:-1]
    if head.get("format") != FORMAT:
        raise _bad("not a replay file")
    if head.get("version") != VERSION:
        raise _bad(f"version {head.get('version')!r}, this engine reads {VERSION}")
    name, mode, seed, start = head.get("game"), head.get("mode"), head.get("seed"), head.get("start")
    match_id, arity, tree = head.get("match_id", ""), head.get("inputs"), head.get("config")
    if not (type(name) is str and type(mode) is str and type(seed) is int and type(start) is int
            and 0 <= start < MAX_TICKS and type(match_id) is str and len(match_id) <= 256
            and type(tree) is dict):
        raise _bad("bad header")
    from engine.game import GameDef as _GameDef
    if isinstance(games, _GameDef):
        gdef = games if games.name == name else None
    else:
        gdef = (games or registry()).games.get(name)
    if gdef is None or mode not in gdef.modes:
        raise ReplayError(f"game {name!r} / mode {mode!r} is not registered here")
    if arity != len(gdef.inputs):
        raise _bad(f"{arity!r} input values, game {name!r} has {len(gdef.inputs)}")
    base = gdef.modes[mode].config
    have = {f.name for f in dataclasses.fields(base)}
    overrides = {}
    for k, v in tree.items():
        if type(k) is not str or k not in have:
            raise _bad(f"config field {k!r} is not one of mode {mode!r}'s")
        try:
            overrides[k] = snapshot.decode_graph([[], v], ())
        except snapshot.SnapshotError as e:
            raise _bad(f"config field {k!r}: {e}") from None
    try:
        config = dataclasses.replace(base, **overrides) if overrides else base
    except Exception as e:
        raise _bad(f"config refused by the game: {e!r}") from None
    overrides = {k: v for k, v in overrides.items() if v != getattr(base, k)}  # for display
    records = _records(chunks, start, gdef)
    end_tick, ticks = tail.get("end_tick"), tail.get("ticks")
    truncated, status, reason = tail.get("truncated"), tail.get("status"), tail.get("reason")
    if not (type(end_tick) is int and type(ticks) is int and start <= end_tick <= ticks < MAX_TICKS
            and type(truncated) is bool and type(status) is str and type(reason) is str
            and len(status) <= 32 and len(reason) <= 64):
        raise _bad("bad trailer")
    if records and records[-1][0] > end_tick:
        raise _bad("records after end_tick")
    if not truncated and end_tick != ticks:
        raise _bad("end_tick is not the last tick of a complete log")
    return Replay(name, mode, seed, config, overrides, InputLog(records, end_tick), start,
                  end_tick, ticks, truncated, status, reason, match_id, gdef)


_I64_LO, _I64_HI = -(1 << 63), 1 << 63
_all_int = frozenset((int,)).issuperset


def _int(v: Any) -> bool:
    return type(v) is int and _I64_LO <= v < _I64_HI


def _records(chunks: list, start: int, gdef: GameDef) -> list[tuple]:
    """The flat tick arrays as `InputLog` records, every field checked (input values
    within the game's input spec, as the room clamps them)."""
    arity, in_range = len(gdef.inputs), gdef.in_range
    bounds = [(f.lo, f.hi) for f in gdef.inputs]
    stride = 3 + arity
    out: list[tuple] = []
    tick = start
    seqs: dict[int, int] = {}
    for chunk in chunks:
        if type(chunk) is not list or len(chunk) < 2 or type(chunk[0]) is not int \
                or chunk[0] < 0 or (chunk[0] == 0 and out):
            raise _bad("a bad tick array")
        tick += chunk[0]
        if tick >= MAX_TICKS:
            raise _bad("a tick beyond MAX_TICKS")
        i, n = 1, len(chunk)
        # Most arrays hold only inputs (and leaves): all ints, checked in one C-level pass,
        # then sliced without a check per value.
        plain = _all_int(map(type, chunk)) and min(chunk) >= _I64_LO and max(chunk) < _I64_HI
        if plain and (n - 1) % stride == 0 and not any(chunk[1::stride]):
            # only inputs (every record's op is 0 at its stride): checked column by column
            cols = [chunk[4 + j::stride] for j in range(arity)]
            if not all(lo <= min(c) and max(c) <= hi for c, (lo, hi) in zip(cols, bounds,
                                                                            strict=True)):
                raise _bad(f"input values outside the input spec at tick {tick}")
            for pid, dseq, vals in zip(chunk[2::stride], chunk[3::stride], zip(*cols, strict=True),
                                       strict=True):
                seq = seqs.get(pid, 0) + dseq
                if not _I64_LO <= seq < _I64_HI:
                    raise _bad(f"an input seq out of range at tick {tick}")
                seqs[pid] = seq
                out.append((tick, "input", pid, seq, vals))
            continue
        while i < n:
            op = chunk[i]
            if plain and op == OP_INPUT and i + 3 + arity <= n:
                pid, dseq = chunk[i + 1], chunk[i + 2]
                seq = seqs.get(pid, 0) + dseq
                if not _I64_LO <= seq < _I64_HI:
                    raise _bad(f"an input seq out of range at tick {tick}")
                seqs[pid] = seq
                vals = tuple(chunk[i + 3:i + 3 + arity])
                if not in_range(vals):
                    raise _bad(f"input values outside the input spec at tick {tick}")
                out.append((tick, "input", pid, seq, vals))
                i += 3 + arity
            elif op == OP_INPUT and type(op) is int:
                rec = chunk[i + 1:i + 3 + arity]
                if len(rec) != 2 + arity or not all(_int(v) for v in rec):
                    raise _bad(f"a bad input at tick {tick}")
                pid, dseq, *vals = rec
                seq = seqs.get(pid, 0) + dseq
                if not _int(seq):
                    raise _bad(f"an input seq out of range at tick {tick}")
                seqs[pid] = seq
                if not in_range(tuple(vals)):
                    raise _bad(f"input values outside the input spec at tick {tick}")
                out.append((tick, "input", pid, seq, tuple(vals)))
                i += 3 + arity
            elif op == OP_JOIN and type(op) is int:
                rec = chunk[i + 1:i + 5]
                if (len(rec) != 4 or not _int(rec[0]) or type(rec[1]) is not str
                        or len(rec[1]) > MAX_NAME or type(rec[2]) is not bool or not _int(rec[3])):
                    raise _bad(f"a bad join at tick {tick}")
                out.append((tick, "join", *rec))
                i += 5
            elif op == OP_LEAVE and type(op) is int:
                if i + 1 >= n or not _int(chunk[i + 1]):
                    raise _bad(f"a bad leave at tick {tick}")
                out.append((tick, "leave", chunk[i + 1]))
                i += 2
            elif op == OP_CONNECTED and type(op) is int:
                rec = chunk[i + 1:i + 3]
                if len(rec) != 2 or not _int(rec[0]) or type(rec[1]) is not bool:
                    raise _bad(f"a bad connection change at tick {tick}")
                out.append((tick, "connected", *rec))
                i += 3
            else:
                raise _bad(f"unknown record {op!r} at tick {tick}")
    return out
