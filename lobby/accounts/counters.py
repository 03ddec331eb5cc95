"""The lobby's counters (limits refused, outages, housekeeping), at `GET /metrics`.

Counting is in process memory (`incr`: no I/O, so a flood of refused requests costs no
writes); each worker adds what it counted to the shared total at most once per
`FLUSH_INTERVAL` (after a request, `flush_due`), and `/metrics` shows the shared totals:
`LobbyCounter` rows, or one Redis hash (`<prefix>counters`) with REDIS_URL.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter

from django.db import transaction
from django.db.models import F
from django.http import HttpRequest, HttpResponse

from lobby.shared import state

log = logging.getLogger("lobby.accounts")
FLUSH_INTERVAL = 1.0  # seconds

HELP = {
    "arena_lobby_refused_total": "requests refused by a limit (docs/lobby.md, Security)",
    "arena_lobby_login_failures_total": "failed logins (wrong name or password)",
    "arena_lobby_unavailable_total": "requests answered 503: Redis or the database unreachable",
    "arena_lobby_housekeeping_removed_total": "rows removed by housekeeping",
}

_pending: Counter[str] = Counter()
_lock = threading.Lock()
_last_flush = 0.0


def series(name: str, **labels: str) -> str:
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}" if inner else name


def incr(name: str, amount: int = 1, **labels: str) -> None:
    with _lock:
        _pending[series(name, **labels)] += amount


def flush() -> None:
    """Add this process's pending counts to the shared totals (kept if that fails)."""
    global _last_flush
    with _lock:
        pending = dict(_pending)
        _pending.clear()
        _last_flush = time.monotonic()
    if not pending:
        return
    try:
        shared = state()
        if shared.redis is not None:
            from django.conf import settings

            with shared.redis.pipeline(transaction=False) as p:
                for key, n in pending.items():
                    p.hincrby(f"{settings.REDIS_PREFIX}counters", key, n)
                p.execute()
            return
        from .models import LobbyCounter

        with transaction.atomic():
            for key, n in pending.items():
                if not LobbyCounter.objects.filter(name=key).update(value=F("value") + n):
                    LobbyCounter.objects.get_or_create(name=key)
                    LobbyCounter.objects.filter(name=key).update(value=F("value") + n)
    except Exception as exc:  # the store is away: count again later
        log.warning("counters not flushed (%s); kept for the next try", exc)
        with _lock:
            _pending.update(pending)


def flush_due() -> None:
    if _pending and time.monotonic() - _last_flush >= FLUSH_INTERVAL:
        flush()


def totals() -> dict[str, int]:
    shared = state()
    if shared.redis is not None:
        from django.conf import settings

        raw = shared.redis.hgetall(f"{settings.REDIS_PREFIX}counters")
        return {k.decode() if isinstance(k, bytes) else k: int(v) for k, v in raw.items()}
    from .models import LobbyCounter

    return dict(LobbyCounter.objects.values_list("name", "value"))


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus text: every counter of HELP, totals over all workers."""
    flush()
    values = totals()
    lines = []
    for name, text in HELP.items():
        lines += [f"# HELP {name} {text}", f"# TYPE {name} counter"]
        mine = sorted((k, v) for k, v in values.items() if k.split("{")[0] == name)
        lines += [f"{k} {v}" for k, v in mine] or [f"{name} 0"]
    return HttpResponse("\n".join(lines) + "\n", content_type="text/plain; version=0.0.4")
