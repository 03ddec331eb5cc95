"""Field checks for JSON bodies; each raises BadRequest with the field's name."""

from __future__ import annotations

import re
from typing import Any

from lobby.api import BadRequest

NODE_ID_RE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")
URL_RE = re.compile(r"^https?://[^\s/]+(/[^\s]*)?$")
NAME_RE = re.compile(r"[a-z][a-z0-9_-]{0,15}")  # game and mode names (fullmatch)
MAX_NODE_MODES = 256  # modes in one heartbeat


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
