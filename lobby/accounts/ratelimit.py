"""Login and guest rate limits, counted in the shared state (`lobby.shared`: the database,
or Redis with REDIS_URL) so that every worker sees them. docs/lobby.md, "Security".

Logins: a failure counts against three keys within `LOGIN_FAILURE_WINDOW` seconds:

- the (account, address) pair, `LOGIN_MAX_FAILURES` (5): an attacker's guesses block the
  attacker's address for that account, not the owner logging in from elsewhere;
- the account, `LOGIN_ACCOUNT_MAX_FAILURES` (100): a ceiling for guesses spread over many
  addresses;
- the address, `LOGIN_ADDRESS_MAX_FAILURES` (50): one address guessing many accounts.

The account is the name as Django's login form reads it (NFKC-normalised), case-folded,
so that compatible spellings of one name share their counts. A successful login clears
its pair. Over any limit the attempt is refused (429) before the password is checked.

Guests: `GUEST_MAX_PER_ADDRESS` new guests per address within `GUEST_WINDOW` seconds;
addresses in `GUEST_ALLOWLIST` (e.g. a load-test machine) are exempt.
"""

from __future__ import annotations

import functools
import time
import unicodedata
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth.signals import user_logged_in, user_login_failed
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse

from lobby.shared import state
from lobby.shared.middleware import in_networks

from . import counters

KEYS_ATTR = "_arena_login_keys"  # the request's login keys, set by `begin_login`


def account_key(username: str) -> str:
    """The name as Django authenticates it (AuthenticationForm: NFKC), then case-folded."""
    return unicodedata.normalize("NFKC", username.strip()).casefold()[:120]


def login_keys(request: HttpRequest, username: str) -> dict[str, int]:
    """Key -> limit of a login attempt: the pair, the account, the address."""
    account, address = account_key(username), request.META.get("REMOTE_ADDR", "")
    return {f"p:{account}|{address}": settings.LOGIN_MAX_FAILURES,
            f"u:{account}": settings.LOGIN_ACCOUNT_MAX_FAILURES,
            f"ip:{address}": settings.LOGIN_ADDRESS_MAX_FAILURES}


KEY_LIMITS = ("login_pair", "login_account", "login_address")  # in the order of login_keys


def over_limit(keys: dict[str, int]) -> str | None:
    """The first limit these keys are over (a KEY_LIMITS name), or None."""
    counts = state().logins.counts(list(keys), time.time())
    for name, n, limit in zip(KEY_LIMITS, counts, keys.values(), strict=True):
        if n >= limit:
            return name
    return None


def is_blocked(keys: dict[str, int]) -> bool:
    return over_limit(keys) is not None


def begin_login(request: HttpRequest) -> bool:
    """Called by every login view on POST: True if the attempt must be refused (429).
    Otherwise the attempt's outcome is counted by the signal receivers below."""
    keys = login_keys(request, str(request.POST.get("username", "")))
    limit = over_limit(keys)
    if limit is not None:
        counters.incr("arena_lobby_refused_total", limit=limit)
        return True
    setattr(request, KEYS_ATTR, keys)
    return False


@receiver(user_login_failed)
def _count_failure(sender, credentials: dict, request: HttpRequest | None = None, **kw) -> None:
    keys = getattr(request, KEYS_ATTR, None)
    if keys:
        counters.incr("arena_lobby_login_failures_total")
        state().logins.record_failure(list(keys), time.time())


@receiver(user_logged_in)
def _clear_pair(sender, request: HttpRequest | None = None, user=None, **kw) -> None:
    keys = getattr(request, KEYS_ATTR, None)
    if keys:
        state().logins.clear(next(iter(keys)))  # the pair only: the ceilings keep counting


TOO_MANY_LOGINS = "Too many failed logins. Wait a few minutes and try again."


def rate_limited_login(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """A login view (e.g. the admin's) under the same limits: 429 when over them."""

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method == "POST" and begin_login(request):
            return too_many(TOO_MANY_LOGINS, settings.LOGIN_FAILURE_WINDOW)
        return view(request, *args, **kwargs)

    return wrapper


def too_many(message: str, retry_after: int) -> HttpResponse:
    response = HttpResponse(message, status=429, content_type="text/plain; charset=utf-8")
    response["Retry-After"] = str(retry_after)
    return response


# --- guests -----------------------------------------------------------------------

class GuestLimited(Exception):
    """This address has created `GUEST_MAX_PER_ADDRESS` guests within `GUEST_WINDOW`."""


def count_new_guest(request: HttpRequest) -> None:
    """Count a guest about to be created from this address; raise GuestLimited over it."""
    address = request.META.get("REMOTE_ADDR", "")
    if in_networks(address, settings.GUEST_ALLOWLIST):
        return
    limiter, keys, now = state().guests, [f"ip:{address}"], time.time()
    if limiter.blocked(keys, now):
        counters.incr("arena_lobby_refused_total", limit="guests_per_address")
        raise GuestLimited()
    limiter.record_failure(keys, now)
