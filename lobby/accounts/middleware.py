"""Guest sessions kept alive while used, and the housekeeping schedule."""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import counters

GUEST_SEEN = "arena_guest_seen"  # session key: when a guest session's expiry was last moved
GUEST_REFRESH = 3600  # seconds: at most one session write per hour per active guest


class GuestSessions:
    """A guest's session expires GUEST_SESSION_AGE seconds after its last use (to within
    GUEST_REFRESH): each use moves the expiry, with one write per GUEST_REFRESH at most."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        session = getattr(request, "session", None)
        if session is None or not session.accessed or response.status_code >= 500:
            return response  # not read by the request (or unreadable: database down)
        seen = session.get(GUEST_SEEN)
        now = int(time.time())
        if seen is not None and now - seen >= min(GUEST_REFRESH, settings.GUEST_SESSION_AGE / 2):
            session.set_expiry(settings.GUEST_SESSION_AGE)
            session[GUEST_SEEN] = now
        return response


class Housekeeping:
    """Starts `housekeeping.clean()` in a background thread every HOUSEKEEPING_INTERVAL
    seconds of this process (0: never; then run `manage.py housekeeping` on a schedule),
    and adds this process's counters to the shared totals (counters.py)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        from .housekeeping import Scheduler

        self.get_response = get_response
        self.scheduler = Scheduler()

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        self.scheduler.poke()
        counters.flush_due()
        return response
