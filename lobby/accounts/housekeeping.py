"""Housekeeping: expired sessions and never-played guests go away (docs/lobby.md, "Guests").

`clean()` is run by `manage.py housekeeping` and, every HOUSEKEEPING_INTERVAL seconds, by
each lobby process itself (middleware.Housekeeping, in a background thread), so the
embedded default needs no cron. Deletes go in batches, each its own short transaction,
so that requests are never held up for long (SQLite serializes writers).
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.db import connection, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from . import counters

log = logging.getLogger("lobby.accounts")

BATCH = 500


def _delete_in_batches(queryset) -> int:
    total = 0
    while True:
        pks = list(queryset.values_list("pk", flat=True)[:BATCH])
        if not pks:
            return total
        with transaction.atomic():
            queryset.model.objects.filter(pk__in=pks).delete()
        total += len(pks)


def unplayed_guests(now=None):
    """Guests created more than GUEST_UNPLAYED_MAX_AGE ago that never took a seat and are
    not waiting in the queue: nothing of theirs would be lost."""
    from lobby.matchmaking.models import MatchPlayer, Ticket

    cutoff = (now or timezone.now()) - timedelta(seconds=settings.GUEST_UNPLAYED_MAX_AGE)
    return (get_user_model().objects
            .filter(profile__guest=True, profile__games=0, date_joined__lt=cutoff)
            .filter(Q(last_login__isnull=True) | Q(last_login__lt=cutoff))
            .exclude(Exists(MatchPlayer.objects.filter(user=OuterRef("pk"))))
            .exclude(Exists(Ticket.objects.filter(user=OuterRef("pk"), status=Ticket.WAITING))))


def clean(now=None) -> dict[str, int]:
    """One housekeeping pass; the number of rows removed of each kind."""
    from .models import LoginFailure

    now = now or timezone.now()
    longest = max(settings.LOGIN_FAILURE_WINDOW, settings.GUEST_WINDOW)
    done = {
        "sessions": _delete_in_batches(Session.objects.filter(expire_date__lt=now)),
        "guests": _delete_in_batches(unplayed_guests(now)),
        "rate_limit_rows": _delete_in_batches(
            LoginFailure.objects.filter(at__lt=now - timedelta(seconds=longest))),
    }
    for kind, n in done.items():
        counters.incr("arena_lobby_housekeeping_removed_total", n, kind=kind)
    log.info("housekeeping: removed %(sessions)d expired sessions, %(guests)d never-played "
             "guests, %(rate_limit_rows)d old rate-limit rows", done)
    return done


class Scheduler:
    """At most one background pass per process at a time, one every `interval` seconds
    (the first one `interval` after the process started)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._next = time.monotonic() + settings.HOUSEKEEPING_INTERVAL
        self._running = False

    def poke(self) -> None:
        interval = settings.HOUSEKEEPING_INTERVAL
        if interval <= 0 or time.monotonic() < self._next or self._running:
            return
        with self._lock:
            if self._running or time.monotonic() < self._next:
                return
            self._running = True
            self._next = time.monotonic() + interval
        threading.Thread(target=self._run, name="housekeeping", daemon=True).start()

    def _run(self) -> None:
        try:
            clean()
        except Exception:  # logged; the next pass tries again
            log.exception("housekeeping failed")
        finally:
            connection.close()  # this thread's connection
            self._running = False
