"""The wire codec: the one Python module that knows the format of docs/protocol.md.

Every message is a msgpack array `[type, field, ...]`. `decode*` take untrusted bytes
and raise nothing but `DecodeError`, whose `code` is the close code to answer with.
State is a map `entity id -> tuple of fields`; `make_delta`/`apply_delta` turn two
states into the change between them and back.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import operator
from dataclasses import dataclass, fields
from typing import Any, ClassVar

import msgpack

PROTOCOL_VERSION = 2
DEFAULT_MAX_SIZE = 1024  # bytes of msgpack accepted from a client (docs/protocol.md, limits)

# The room's events (codes 1..15 are reserved for the room; a game's are 16..127, declared
# with engine.game.EventKind).
EV_JOINED, EV_LEFT, EV_MATCH_END = 1, 2, 3   # [1, player, name], [2, player], [3, reason, results]
ROOM_EVENT_MAX = 15


class DecodeError(Exception):
    """Untrusted bytes that are not a valid message. `code` is the close code to use."""

    def __init__(self, code: int, reason: str):
        super().__init__(f"{code} {reason}")
        self.code = code
        self.reason = reason


# --- field checks ---------------------------------------------------------------------

def _int(v: Any) -> bool:
    return type(v) is int


def _u32(v: Any) -> bool:
    return type(v) is int and 0 <= v < 1 << 32


def _u16(v: Any) -> bool:
    return type(v) is int and 0 <= v < 1 << 16


def _str(limit: int):
    def check(v: Any) -> bool:
        return type(v) is str and len(v) <= limit
    return check


def _array(v: Any) -> bool:
    return type(v) is list


def _map(v: Any) -> bool:
    return type(v) is dict


def _scalar_fields(v: Any) -> bool:
    return type(v) is list and all(type(x) in (int, str) for x in v)


def _entities(v: Any) -> bool:
    return type(v) is dict and all(
        _u16(k) and _scalar_fields(f) and f and type(f[0]) is int for k, f in v.items())


def _updated(v: Any) -> bool:
    return type(v) is dict and all(
        _u16(k) and _scalar_fields(f) and len(f) % 2 == 0 for k, f in v.items())


def _ids(v: Any) -> bool:
    return type(v) is list and all(_u16(x) for x in v)


def _events(v: Any) -> bool:
    return type(v) is list and all(type(e) is list and e and _int(e[0]) for e in v)


# --- messages ---------------------------------------------------------------------------

class Message:
    TYPE: ClassVar[int]
    CHECKS: ClassVar[tuple]
    REST: ClassVar[Any] = None   # the check of each extra trailing field, if the type has them


@dataclass(frozen=True, slots=True)
class Join(Message):
    TYPE = 1
    CHECKS = (_str(2048),)
    token: str


@dataclass(frozen=True, slots=True)
class Resume(Message):
    TYPE = 2
    CHECKS = (_str(256),)
    token: str


@dataclass(frozen=True, slots=True)
class Input(Message):
    """`[3, seq, *values]`: seq is u32, values are ints. Their number and ranges are the
    game's input spec (engine.game.GameDef.clamp), checked by the node, not here."""

    TYPE = 3
    CHECKS = (_u32,)
    REST = _int   # every field after CHECKS
    seq: int
    values: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Ping(Message):
    TYPE = 4
    CHECKS = (_u32,)
    t: int


@dataclass(frozen=True, slots=True)
class Leave(Message):
    TYPE = 5
    CHECKS = ()


@dataclass(frozen=True, slots=True)
class Welcome(Message):
    TYPE = 10
    CHECKS = (_u16, _str(256), _str(256), _u32, _map)
    player_id: int
    match_id: str
    resume_token: str
    tick: int
    config: dict


@dataclass(frozen=True, slots=True)
class Keyframe(Message):
    TYPE = 11
    CHECKS = (_u32, _u32, _entities, _events)
    tick: int
    clock: int
    entities: dict
    events: list


@dataclass(frozen=True, slots=True)
class Delta(Message):
    TYPE = 12
    CHECKS = (_u32, _u32, _u32, _entities, _ids, _updated, _events)
    tick: int
    base: int
    clock: int
    added: dict
    removed: list
    updated: dict
    events: list


@dataclass(frozen=True, slots=True)
class Event(Message):
    TYPE = 13
    CHECKS = (_u32, _events)
    tick: int
    events: list


@dataclass(frozen=True, slots=True)
class Error(Message):
    TYPE = 14
    CHECKS = (_u16, _str(256))
    code: int
    reason: str


@dataclass(frozen=True, slots=True)
class Pong(Message):
    TYPE = 15
    CHECKS = (_u32, _u32)
    t: int
    tick: int


@dataclass(frozen=True, slots=True)
class Moved(Message):
    """The match goes on on another node (a draining node handed the room off): resume
    there with `resume_token`; the close that follows is 4031 (docs/protocol.md)."""

    TYPE = 16
    CHECKS = (_str(300), _str(256))
    node_url: str
    resume_token: str


MESSAGES: dict[int, type[Message]] = {
    cls.TYPE: cls
    for cls in (Join, Resume, Input, Ping, Leave, Welcome, Keyframe, Delta, Event, Error, Pong,
                Moved)
}
CLIENT_MESSAGES = frozenset({Join, Resume, Input, Ping, Leave})
_FIELD_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in MESSAGES.values()}


# --- encoding ----------------------------------------------------------------------------

_pack = msgpack.Packer().pack  # reused: msgpack.packb builds a Packer on every call


def encode(msg: Message) -> bytes:
    """msgpack bytes of one message (entity tuples become arrays)."""
    cls = type(msg)
    if cls is Input:
        return _pack([3, msg.seq, *msg.values])
    return _pack([cls.TYPE, *[getattr(msg, name) for name in _FIELD_NAMES[cls]]])


def encode_delta(tick: int, base: int, clock: int, added: dict, removed: list, updated: dict,
                 events: list) -> bytes:
    """`encode(Delta(...))` without building the message: a room encodes one every patch."""
    return _pack([Delta.TYPE, tick, base, clock, added, removed, updated, events])


def to_text(payload: bytes) -> str:
    """The base64 form carried by SockJS's text-only framing."""
    return base64.b64encode(payload).decode("ascii")


_unpackb = msgpack.unpackb
# The state messages' checks, as C-level passes over whole maps (no Python call per entity):
# a client decodes 20 of them a second, each with dozens of entities.
_all_int = frozenset((int,)).issuperset
_all_list = frozenset((list,)).issuperset
_all_scalar = frozenset((int, str)).issuperset
_first = operator.itemgetter(0)
_odd = (1).__and__
_flat = itertools.chain.from_iterable


def _valid_u16s(ids: list | dict) -> bool:
    """Every item (key) is an int (not a bool) in 0..65535."""
    return _all_int(map(type, ids)) and (not ids or (min(ids) >= 0 and max(ids) < 65536))


def _state_entities(v: Any) -> dict[int, tuple] | None:
    """`_entities(v)` with the entity arrays made tuples, or None if invalid."""
    if type(v) is not dict:
        return None
    fields = v.values()
    if (_valid_u16s(v) and _all_list(map(type, fields)) and 0 not in map(len, fields)
            and _all_int(map(type, map(_first, fields))) and _all_scalar(map(type, _flat(fields)))):
        return dict(zip(v, map(tuple, fields), strict=True))
    return None


def _valid_updated(v: Any) -> bool:
    """`_updated(v)`."""
    if type(v) is not dict:
        return False
    fields = v.values()
    return (_valid_u16s(v) and _all_list(map(type, fields)) and not any(map(_odd, map(len, fields)))
            and _all_scalar(map(type, _flat(fields))))


def _valid_events(v: Any) -> bool:
    """`_events(v)` in one pass."""
    if type(v) is not list:
        return False
    for e in v:  # noqa: SIM110 (a plain loop: cheaper than all() over a generator)
        if type(e) is not list or not e or type(e[0]) is not int:
            return False
    return True


def _u32s(a: Any, b: Any, c: Any = 0) -> bool:
    return type(a) is int and type(b) is int and type(c) is int and 0 <= a < 1 << 32 \
        and 0 <= b < 1 << 32 and 0 <= c < 1 << 32


def _decode_keyframe(obj: list) -> Keyframe:
    if len(obj) < 5 or not _u32s(obj[1], obj[2]) or not _valid_events(obj[4]):
        raise DecodeError(4001, "Bad message")
    entities = _state_entities(obj[3])
    if entities is None:
        raise DecodeError(4001, "Bad message")
    return Keyframe(obj[1], obj[2], entities, obj[4])


def _decode_delta(obj: list) -> Delta:
    if (len(obj) < 8 or not _u32s(obj[1], obj[2], obj[3]) or type(obj[5]) is not list or not _valid_u16s(obj[5])
            or not _valid_updated(obj[6]) or not _valid_events(obj[7])):
        raise DecodeError(4001, "Bad message")
    added = _state_entities(obj[4])
    if added is None:
        raise DecodeError(4001, "Bad message")
    return Delta(obj[1], obj[2], obj[3], added, obj[5], obj[6], obj[7])


def decode(data: bytes, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """The message in `data`, checked against its CHECKS (docs/protocol.md).

    Inputs (what a node decodes most) and the state messages (keyframe, delta: what a
    client decodes 20 times a second) take one-pass paths with the same rules as their
    CHECKS (and REST); tests/engine/test_codec_fast.py checks both agree."""
    if len(data) > max_size:
        raise DecodeError(4002, "Message too large")
    try:
        obj = _unpackb(data, raw=False, strict_map_key=False)
    except Exception:  # msgpack raises many types for garbage; all mean the same here
        raise DecodeError(4001, "Bad message") from None
    if type(obj) is not list or not obj or type(obj[0]) is not int:
        raise DecodeError(4001, "Bad message")
    kind = obj[0]
    if kind == 3:  # Input.TYPE: a node decodes up to max_input_rate of them per player
        if len(obj) < 2 or not _u32(obj[1]):
            raise DecodeError(4001, "Bad message")
        values = obj[2:]
        if not _all_int(map(type, values)):
            raise DecodeError(4001, "Bad message")
        return Input(obj[1], tuple(values))
    if kind == 12:  # Delta.TYPE
        return _decode_delta(obj)
    if kind == 11:  # Keyframe.TYPE
        return _decode_keyframe(obj)
    cls = MESSAGES.get(kind)
    if cls is None:
        raise DecodeError(4003, "Unknown message type")
    checks = cls.CHECKS
    values = obj[1:1 + len(checks)]
    if len(values) < len(checks):
        raise DecodeError(4001, "Bad message")
    for check, v in zip(checks, values, strict=True):
        if not check(v):
            raise DecodeError(4001, "Bad message")
    return cls(*values)


def decode_text(text: str, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    if len(text) > (max_size + 2) // 3 * 4:
        raise DecodeError(4002, "Message too large")
    try:
        data = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise DecodeError(4001, "Bad message") from None
    return decode(data, max_size)


def decode_any(data: bytes | str, max_size: int = DEFAULT_MAX_SIZE) -> Message:
    """A binary frame is msgpack; a text message is base64 msgpack."""
    if isinstance(data, str):
        return decode_text(data, max_size)
    return decode(bytes(data), max_size)


# --- state deltas ----------------------------------------------------------------------------

def make_delta(prev: dict[int, tuple], cur: dict[int, tuple]) -> tuple[dict, list, dict]:
    """(added, removed, updated) that turn `prev` into `cur` (docs/protocol.md, "Delta")."""
    added: dict[int, tuple] = {}
    updated: dict[int, list] = {}
    for eid, new in cur.items():
        old = prev.get(eid)
        if old is new:  # the same tuple (an unchanged entity kept by the game): no change
            continue
        if old is None:
            added[eid] = new
        elif old != new:
            if len(old) != len(new) or old[0] != new[0]:
                added[eid] = new  # another kind of entity under the same id: send it whole
                continue
            changes = []
            for i, value in enumerate(new):
                if value != old[i]:
                    changes += (i, value)
            updated[eid] = changes
    removed = [eid for eid in prev if eid not in cur]
    return added, removed, updated


def apply_delta(entities: dict[int, tuple], added: dict, removed: list, updated: dict) -> dict[int, tuple]:
    """A new state: `entities` with the delta applied. Raises DecodeError if it does not fit."""
    out = dict(entities)
    for eid in removed:
        out.pop(eid, None)
    for eid, new in added.items():
        out[eid] = tuple(new)
    for eid, changes in updated.items():
        old = out.get(eid)
        if old is None:
            raise DecodeError(4001, "Delta does not apply")
        fields_ = list(old)
        for i in range(0, len(changes), 2):
            index = changes[i]
            if type(index) is not int or not 0 < index < len(fields_):
                raise DecodeError(4001, "Delta does not apply")
            fields_[index] = changes[i + 1]
        out[eid] = tuple(fields_)
    return out


def delta_message(tick: int, base: int, clock: int, prev: dict, cur: dict, events: list) -> Delta:
    added, removed, updated = make_delta(prev, cur)
    return Delta(tick, base, clock, added, removed, updated, events)
