"""Snapshots: a game's whole state as bytes, and a game rebuilt from them, exactly (a
draining node hands its rooms to another node: issue 13; docs/games.md, "Snapshots").

    data = gdef.snapshot(game, mode_name)           # or dump(gdef, mode_name, game)
    game = gdef.restore(data)                       # or load(data, games) -> Restored

The bytes travel between nodes, so loading them is safe for untrusted input: no pickle,
no import, no code from the data; only classes of the game's own package (plus
`engine.rng.Rng` and the modules the game lists in `Game.snapshot_modules`) are built,
with `object.__new__` and their instance attributes, never their `__init__`. Anything
wrong raises `SnapshotError`.

File: a msgpack array `["snapshot", 1, game, mode, tick, checksum, body]`, `checksum`
the 16-byte BLAKE2b of `body` (an end-to-end integrity check; authenticity is the
transport's, e.g. signed node requests), `body` the msgpack of `Game.snapshot_state()`.

The default `snapshot_state()` is the game instance's object graph (`encode_graph`), as
a tree of msgpack scalars (None, bool, int in int64/uint64, float, str, bytes) and
tagged arrays `[tag, ...]`: list 0, tuple 1, dict 2 (`k, v, k, v, ...`, insertion order
kept), object 3 (`shape, *values`), ref 4 (`index`: an object or mutable container met
before, so shared references and cycles survive), big int 5 (`str`), set 6, frozenset 7.
The body of the default is `[shapes, root]`, shapes `[[module, qualname, [attr, ...]]]`.
"""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import msgpack

if TYPE_CHECKING:
    from engine.game import Game, GameDef, Mode
    from engine.registry import Registry

FORMAT, VERSION = "snapshot", 1
MAX_SNAPSHOT_BYTES = 4 << 20       # refused above this (a 16-player Arena room: ~5 KB)
MAX_BIG_INT_DIGITS = 100
ENGINE_MODULES = ("engine.rng",)   # engine classes any game may hold (Rng)

T_LIST, T_TUPLE, T_DICT, T_OBJ, T_REF, T_BIG, T_SET, T_FROZEN = range(8)  # the tags
_INT_LO, _INT_HI = -(1 << 63), 1 << 64
_SCALARS = (type(None), bool, float, str, bytes)


class SnapshotError(Exception):
    """The state cannot be written down, or the bytes are not a valid snapshot of a
    registered game (corrupt, forged, another version, a class not allowed, ...)."""


@dataclass(frozen=True)
class Restored:
    gdef: GameDef
    mode: Mode
    tick: int
    game: Game


# --- the host's calls --------------------------------------------------------------------------

def checksum(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16).digest()


def dump(gdef: GameDef, mode: str, game: Game) -> bytes:
    """The snapshot of `game`, a match of `gdef`'s mode `mode`."""
    if mode not in gdef.modes:
        raise SnapshotError(f"game {gdef.name!r} has no mode {mode!r}")
    if type(game) is not gdef.game:
        raise SnapshotError(f"{type(game).__qualname__} is not game {gdef.name!r}'s class")
    try:
        body = msgpack.packb(game.snapshot_state(), use_bin_type=True)
    except SnapshotError:
        raise
    except (TypeError, ValueError, OverflowError) as e:
        raise SnapshotError(f"game {gdef.name!r}: snapshot_state() is not msgpack data: {e}") from e
    data = msgpack.packb([FORMAT, VERSION, gdef.name, mode, game.tick, checksum(body), body],
                         use_bin_type=True)
    if len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError(f"snapshot of {len(data)} bytes above {MAX_SNAPSHOT_BYTES}")
    return data


def load(data: bytes, games: Registry | GameDef | None = None) -> Restored:
    """The game in `data`, its definition and mode, looked up in `games` (a registry, or
    the one game expected; default: the process registry). Raises `SnapshotError` and
    nothing else."""
    from engine.game import GameDef
    from engine.registry import registry

    if type(data) is not bytes or len(data) > MAX_SNAPSHOT_BYTES:
        raise SnapshotError("not bytes, or above MAX_SNAPSHOT_BYTES")
    try:
        head = msgpack.unpackb(data, raw=False)
    except Exception:
        raise SnapshotError("not msgpack") from None
    if (type(head) is not list or len(head) != 7 or head[0] != FORMAT
            or type(head[1]) is not int):
        raise SnapshotError("not a snapshot")
    _, version, name, mode, tick, digest, body = head
    if version != VERSION:
        raise SnapshotError(f"snapshot version {version}, this engine reads {VERSION}")
    if not (type(name) is str and type(mode) is str and type(tick) is int
            and type(digest) is bytes and type(body) is bytes):
        raise SnapshotError("bad snapshot header")
    if checksum(body) != digest:
        raise SnapshotError("checksum mismatch: the snapshot was damaged in transit")
    if isinstance(games, GameDef):
        gdef = games if games.name == name else None
    else:
        gdef = (games or registry()).games.get(name)
    if gdef is None or mode not in gdef.modes:
        raise SnapshotError(f"game {name!r} / mode {mode!r} is not registered here")
    try:
        state = msgpack.unpackb(body, raw=False, strict_map_key=False)
        game = gdef.game.restore_state(state)
        ok = type(game) is gdef.game and game.tick == tick
        if ok:   # the restored state answers the host's reads
            ents, _ = game.entities(), game.results()
            ok = type(ents) is dict and type(game.clock) is int and type(game.over) is bool
    except SnapshotError:
        raise
    except Exception as e:
        raise SnapshotError(f"game {name!r}: the snapshot does not restore: {e!r}") from None
    if not ok:
        raise SnapshotError(f"game {name!r}: the snapshot restores to another game or tick")
    return Restored(gdef, gdef.modes[mode], tick, game)


# --- the default state: the object graph ---------------------------------------------------------

def allowed_modules(cls: type) -> tuple[str, ...]:
    """Where the classes of a game's state may come from: its package (the module's
    parent, or the module if top-level), the engine's `ENGINE_MODULES`, and
    `cls.snapshot_modules`."""
    module = cls.__module__
    return (module.rpartition(".")[0] or module, *ENGINE_MODULES,
            *getattr(cls, "snapshot_modules", ()))


def _module_allowed(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


_SLOTS: dict[type, tuple[tuple[str, ...], bool]] = {}


def _layout(cls: type) -> tuple[tuple[str, ...], bool]:
    """(slot names across the MRO, whether instances have a __dict__), for a plain class
    (Python-defined, `object.__new__`): SnapshotError otherwise."""
    got = _SLOTS.get(cls)
    if got is None:
        if cls.__new__ is not object.__new__ or any(
                b is not object and b.__flags__ & (1 << 9) == 0 for b in cls.__mro__):
            # 1 << 9 is Py_TPFLAGS_HEAPTYPE: a class defined in Python, not a builtin
            raise SnapshotError(f"{cls.__module__}.{cls.__qualname__} is not a plain class")
        slots: list[str] = []
        for b in reversed(cls.__mro__):
            s = b.__dict__.get("__slots__", ())
            for n in ((s,) if isinstance(s, str) else s):
                if n not in ("__dict__", "__weakref__") and n not in slots:
                    slots.append(n)
        has_dict = any("__dict__" in b.__dict__ for b in cls.__mro__ if b is not object)
        got = _SLOTS[cls] = (tuple(slots), has_dict)
    return got


_MISSING = object()


def encode_graph(root: Any, modules: tuple[str, ...]) -> list:
    """`[shapes, tree]` of `root` (see the module's docstring). SnapshotError for a value
    of another type, or an object of a class outside `modules`."""
    memo: dict[int, int] = {}
    shapes: dict[tuple, int] = {}
    table: list[list] = []
    allowed: dict[type, tuple[tuple[str, ...], bool]] = {}

    def layout(cls: type) -> tuple[tuple[str, ...], bool]:
        got = allowed.get(cls)
        if got is None:
            if not _module_allowed(cls.__module__, modules) or "<locals>" in cls.__qualname__:
                raise SnapshotError(f"class {cls.__module__}.{cls.__qualname__} is outside "
                                    f"the game's modules {modules} (Game.snapshot_modules)")
            got = allowed[cls] = _layout(cls)
        return got

    def enc(v: Any) -> Any:
        t = type(v)
        if t is int:
            return v if _INT_LO <= v < _INT_HI else [T_BIG, str(v)]
        if t in _SCALARS:
            return v
        if t is frozenset:   # immutable, like a tuple: copied by value, never a ref
            return [T_FROZEN, *map(enc, v)]
        if t is tuple:
            out = [T_TUPLE]
            for x in v:
                tx = type(x)
                out.append(x if (tx is int and _INT_LO <= x < _INT_HI) or tx is str else enc(x))
            return out
        key = id(v)
        ref = memo.get(key)
        if ref is not None:
            return [T_REF, ref]
        memo[key] = len(memo)
        if t is list:
            out = [T_LIST]
            for x in v:
                tx = type(x)
                out.append(x if (tx is int and _INT_LO <= x < _INT_HI) or tx is str else enc(x))
            return out
        if t is dict:
            out = [T_DICT]
            for k, x in v.items():
                out.append(k if type(k) is int and _INT_LO <= k < _INT_HI else enc(k))
                tx = type(x)
                out.append(x if (tx is int and _INT_LO <= x < _INT_HI) or tx is str else enc(x))
            return out
        if t is set:
            return [T_SET, *map(enc, v)]
        if isinstance(t, type) and t.__module__ != "builtins":
            slots, has_dict = layout(t)
            names: list[str] = [n for n in slots if getattr(v, n, _MISSING) is not _MISSING]
            if has_dict:
                names += v.__dict__
            shape_key = (t, *names)
            shape = shapes.get(shape_key)
            if shape is None:
                shape = shapes[shape_key] = len(table)
                table.append([t.__module__, t.__qualname__, names])
            out = [T_OBJ, shape]
            d = v.__dict__ if has_dict else None
            for n in names:
                x = d[n] if d is not None and n in d else getattr(v, n)
                tx = type(x)
                out.append(x if (tx is int and _INT_LO <= x < _INT_HI) or tx is str else enc(x))
            return out
        raise SnapshotError(f"cannot snapshot a value of type {t.__qualname__}: give the game "
                            "its own snapshot_state()/restore_state()")

    try:
        tree = enc(root)
    except RecursionError:
        raise SnapshotError("state nested too deeply") from None
    return [table, tree]


def decode_graph(state: Any, modules: tuple[str, ...]) -> Any:
    """The inverse of `encode_graph`, for untrusted input (SnapshotError on anything
    wrong). Objects are built with `object.__new__` and their attributes set directly
    (slots through their descriptors, the rest into `__dict__`): no code of theirs runs."""
    if type(state) is not list or len(state) != 2 or type(state[0]) is not list:
        raise SnapshotError("bad state: not [shapes, tree]")
    shapes: list[tuple[type, list[Callable[[Any, Any], None] | str], bool]] = []
    for entry in state[0]:
        shapes.append(_shape(entry, modules))
    memo: list = []

    def dec(v: Any) -> Any:
        if type(v) is not list:
            if type(v) is dict:
                raise SnapshotError("bad state: a map outside a tag")
            return v
        if not v:
            raise SnapshotError("bad state: an empty array")
        tag = v[0]
        if tag == T_TUPLE:
            return tuple([x if type(x) is not list else dec(x) for x in v[1:]])
        if tag == T_LIST:
            out: list = []
            memo.append(out)
            out.extend([x if type(x) is not list else dec(x) for x in v[1:]])
            return out
        if tag == T_DICT:
            if len(v) % 2 == 0:
                raise SnapshotError("bad state: a dict of odd length")
            d: dict = {}
            memo.append(d)
            it = iter(v)
            next(it)
            for k, x in zip(it, it, strict=True):
                d[k if type(k) is not list else dec(k)] = x if type(x) is not list else dec(x)
            return d
        if tag == T_OBJ:
            if len(v) < 2 or type(v[1]) is not int or not 0 <= v[1] < len(shapes):
                raise SnapshotError("bad state: an object of an unknown shape")
            cls, setters, has_dict = shapes[v[1]]
            if len(v) - 2 != len(setters):
                raise SnapshotError(f"bad state: {cls.__qualname__} has another shape")
            obj = object.__new__(cls)
            memo.append(obj)
            d = obj.__dict__ if has_dict else None
            for setter, x in zip(setters, v[2:], strict=True):
                if type(x) is list:
                    x = dec(x)
                if type(setter) is str:
                    d[setter] = x   # type: ignore[index]
                else:
                    setter(obj, x)
            return obj
        if tag == T_REF:
            if len(v) != 2 or type(v[1]) is not int or not 0 <= v[1] < len(memo):
                raise SnapshotError("bad state: a reference to nothing")
            return memo[v[1]]
        if tag == T_BIG:
            if len(v) != 2 or type(v[1]) is not str or len(v[1]) > MAX_BIG_INT_DIGITS:
                raise SnapshotError("bad state: a bad big int")
            return int(v[1])
        if tag == T_SET:
            s: set = set()
            memo.append(s)
            s.update(dec(x) if type(x) is list else x for x in v[1:])
            return s
        if tag == T_FROZEN:
            return frozenset(dec(x) if type(x) is list else x for x in v[1:])
        raise SnapshotError(f"bad state: unknown tag {tag!r}")

    try:
        return dec(state[1])
    except SnapshotError:
        raise
    except RecursionError:
        raise SnapshotError("bad state: nested too deeply") from None
    except Exception as e:   # unhashable keys, bad int text, a slot refusing a value, ...
        raise SnapshotError(f"bad state: {e!r}") from None


def _shape(entry: Any, modules: tuple[str, ...]) -> tuple[type, list, bool]:
    """A class-table entry, checked: an already imported class of an allowed module, plain,
    and attribute names it can hold."""
    if (type(entry) is not list or len(entry) != 3 or type(entry[0]) is not str
            or type(entry[1]) is not str or type(entry[2]) is not list):
        raise SnapshotError("bad state: a bad class entry")
    module, qualname, names = entry
    if not _module_allowed(module, modules) or module not in sys.modules:
        raise SnapshotError(f"bad state: class from module {module!r} is not allowed")
    cls: Any = sys.modules[module]
    for part in qualname.split("."):
        if not part.isidentifier() or part.startswith("__"):
            raise SnapshotError(f"bad state: bad class name {qualname!r}")
        cls = getattr(cls, part, None)
    if not isinstance(cls, type) or cls.__module__ != module or cls.__qualname__ != qualname:
        raise SnapshotError(f"bad state: {module}.{qualname} is not a class")
    slots, has_dict = _layout(cls)
    setters: list = []
    for n in names:
        if type(n) is not str or not n.isidentifier() or n.startswith("__"):
            raise SnapshotError(f"bad state: bad attribute name {n!r}")
        if n in slots:
            setters.append(_slot_setter(cls, n))
        elif has_dict:
            setters.append(n)
        else:
            raise SnapshotError(f"bad state: {qualname} has no attribute slot {n!r}")
    return cls, setters, has_dict


def _slot_setter(cls: type, name: str) -> Callable[[Any, Any], None]:
    for b in cls.__mro__:
        d = b.__dict__.get(name)
        if d is not None and type(d).__name__ == "member_descriptor":
            return d.__set__
    raise SnapshotError(f"bad state: {cls.__qualname__}.{name} is not a slot")
