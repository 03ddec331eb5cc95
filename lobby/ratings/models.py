"""Result reports as nodes sent them: one row per match id, the idempotency key."""

from django.db import models


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
