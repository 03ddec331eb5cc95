"""Per-game ratings, and result reports as nodes sent them (one row per match id: the
idempotency key)."""

from django.conf import settings
from django.db import models


def start_rating() -> float:
    return settings.RATING_START


class Rating(models.Model):
    """A player's Elo rating and totals in one game: a player's rating in one game says
    nothing about another. A player without a row has `RATING_START` and no games."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="ratings")
    game = models.CharField(max_length=16)
    rating = models.FloatField(default=start_rating)
    games = models.PositiveIntegerField(default=0, help_text="finished, rated matches")
    wins = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "game"], name="one_rating_per_game")]
        indexes = [models.Index(fields=["game", "-rating"], name="rating_board")]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.game}: {self.rating:.0f}"


class ResultReport(models.Model):
    match_id = models.CharField(max_length=32, unique=True)
    node_id = models.CharField(max_length=64)
    status = models.CharField(max_length=10)
    body = models.JSONField()
    received_at = models.DateTimeField(auto_now_add=True)
    duplicates = models.PositiveIntegerField(default=0, help_text="repeats received later")
    applied = models.BooleanField(default=False, help_text="it closed the match")

    def __str__(self) -> str:
        return f"{self.match_id} from {self.node_id} [{self.status}]"
