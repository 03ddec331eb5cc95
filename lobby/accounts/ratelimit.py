"""Login rate limit: LOGIN_MAX_FAILURES failures per LOGIN_FAILURE_WINDOW seconds, counted
per account and per client address, in the shared state (`lobby.shared`: the database, or
Redis with REDIS_URL) so that every worker sees them."""

from __future__ import annotations

import time

from django.http import HttpRequest

from lobby.shared import state


def login_keys(request: HttpRequest, username: str) -> list[str]:
    """The account key and the address key of a login attempt."""
    return [f"u:{username.strip().lower()[:150]}", f"ip:{request.META.get('REMOTE_ADDR', '')}"]


def is_blocked(keys: list[str]) -> bool:
    return state().logins.blocked(keys, time.time())


def record_failure(keys: list[str]) -> None:
    state().logins.record_failure(keys, time.time())


def clear_account(keys: list[str]) -> None:
    """A successful login clears its account's failures (not the address's)."""
    state().logins.clear(keys[0])
