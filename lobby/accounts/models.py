"""Player profile (rating, guest flag, totals) and the login failure log."""

from __future__ import annotations

from django.conf import settings
from django.db import models


def start_rating() -> float:
    return settings.RATING_START


class Profile(models.Model):
    """One per user, created with the user (signals.py)."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="profile")
    rating = models.FloatField(default=start_rating, db_index=True)
    guest = models.BooleanField(default=False)
    games = models.PositiveIntegerField(default=0, help_text="finished, rated matches")
    wins = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"{self.user.username} ({self.rating:.0f})"


class LoginFailure(models.Model):
    """A failed login, keyed by account ("u:<name>") and by address ("ip:<addr>")."""

    key = models.CharField(max_length=200, db_index=True)
    at = models.DateTimeField(db_index=True)

    def __str__(self) -> str:
        return f"{self.key} at {self.at:%Y-%m-%d %H:%M:%S}"


class LobbyCounter(models.Model):
    """A Prometheus counter of the lobby (`counters.py`), summed over every worker."""

    name = models.CharField(max_length=200, unique=True)  # metric name with its labels
    value = models.BigIntegerField(default=0)

    def __str__(self) -> str:
        return f"{self.name} {self.value}"
