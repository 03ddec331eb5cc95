"""Login rate limit: LOGIN_MAX_FAILURES failures per LOGIN_FAILURE_WINDOW seconds, counted
per account and per client address, in the database so that every worker sees them."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Count
from django.http import HttpRequest
from django.utils import timezone

from .models import LoginFailure


def login_keys(request: HttpRequest, username: str) -> list[str]:
    """The account key and the address key of a login attempt."""
    return [f"u:{username.strip().lower()[:150]}", f"ip:{request.META.get('REMOTE_ADDR', '')}"]


def _since():
    return timezone.now() - timedelta(seconds=settings.LOGIN_FAILURE_WINDOW)


def is_blocked(keys: list[str]) -> bool:
    counts = (LoginFailure.objects.filter(key__in=keys, at__gte=_since())
              .values("key").annotate(n=Count("id")))
    return any(row["n"] >= settings.LOGIN_MAX_FAILURES for row in counts)


def record_failure(keys: list[str]) -> None:
    now = timezone.now()
    LoginFailure.objects.bulk_create([LoginFailure(key=k, at=now) for k in keys])
    LoginFailure.objects.filter(at__lt=_since()).delete()


def clear_account(keys: list[str]) -> None:
    """A successful login clears its account's failures (not the address's)."""
    LoginFailure.objects.filter(key=keys[0]).delete()
