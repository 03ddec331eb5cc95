"""Field checks for JSON bodies; each raises BadRequest with the field's name."""

from __future__ import annotations

import re
from typing import Any

from lobby.api import BadRequest

NODE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
URL_RE = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,15}")  # game and mode names (fullmatch)
MAX_NODE_MODES = 256  # modes in one heartbeat
MAX_NODE_MATCHES = 1000  # rooms in one heartbeat's `matches`
MAX_LIVE_TOP = 3  # players in a room's `top`
MAX_LIVE_LEFT = 86_400  # seconds left in a room
BOOT_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")  # a node process's random id
NODE_COUNTERS = ("boot", "seated_total", "rooms_total")  # a heartbeat's, all or none


def integer(data: dict, key: str, lo: int = 0, hi: int = 2**31 - 1) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise BadRequest(f"{key} must be an integer in [{lo}, {hi}]")
    return value


def string(data: dict, key: str, max_len: int, pattern: re.Pattern | None = None) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value or len(value) > max_len:
        raise BadRequest(f"{key} must be a non-empty string of at most {max_len} characters")
    if pattern is not None and not pattern.match(value):
        raise BadRequest(f"{key} has an invalid format")
    return value


def boolean(data: dict, key: str, default: Any = None) -> bool:
    value = data.get(key, default)
    if not isinstance(value, bool):
        raise BadRequest(f"{key} must be true or false")
    return value


def names(data: dict, key: str, max_items: int) -> tuple[str, ...]:
    """A list of distinct names (NAME_RE), at most `max_items`."""
    value = data.get(key)
    if (not isinstance(value, list) or len(value) > max_items
            or not all(isinstance(v, str) and NAME_RE.fullmatch(v) for v in value)):
        raise BadRequest(f"{key} must be a list of at most {max_items} names "
                         f"matching {NAME_RE.pattern}")
    return tuple(dict.fromkeys(value))


def live_rooms(data: dict, key: str) -> tuple[dict, ...]:
    """A heartbeat's `matches`: at most MAX_NODE_MATCHES `{match_id, left, top}`, `left`
    seconds in [0, MAX_LIVE_LEFT], `top` at most MAX_LIVE_TOP `[name, score]` pairs."""
    value = data.get(key)
    bad = BadRequest(f"{key} must be a list of at most {MAX_NODE_MATCHES} {{match_id, left, top}}"
                     f" with left in [0, {MAX_LIVE_LEFT}] and top at most {MAX_LIVE_TOP}"
                     " [name, integer score] pairs")
    if not isinstance(value, list) or len(value) > MAX_NODE_MATCHES:
        raise bad
    out = []
    for room in value:
        if not isinstance(room, dict):
            raise bad
        match_id, left, top = room.get("match_id"), room.get("left"), room.get("top")
        if (not isinstance(match_id, str) or not 0 < len(match_id) <= 32
                or isinstance(left, bool) or not isinstance(left, int | float)
                or not 0 <= left <= MAX_LIVE_LEFT
                or not isinstance(top, list) or len(top) > MAX_LIVE_TOP
                or not all(isinstance(p, list) and len(p) == 2 and isinstance(p[0], str)
                           and 0 < len(p[0]) <= 32 and type(p[1]) is int
                           and abs(p[1]) < 2**31 for p in top)):
            raise bad
        out.append({"match_id": match_id, "left": round(float(left), 1),
                    "top": [[n, s] for n, s in top]})
    return tuple(out)


def node_counters(data: dict) -> dict:
    """A heartbeat's `boot`, `seated_total` and `rooms_total`: all three, or none (an
    older node: {})."""
    if not any(key in data for key in NODE_COUNTERS):
        return {}
    return {"boot": string(data, "boot", 32, BOOT_RE),
            "seated_total": integer(data, "seated_total"),
            "rooms_total": integer(data, "rooms_total")}
