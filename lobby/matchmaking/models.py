"""Game nodes, queue tickets, matches and seats, and the nonces of signed node requests.

The one-ticket / one-match rules are database constraints (partial unique indexes), so
they hold whichever worker process serves the request.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

NAME_MAX = 16  # game and mode names (the registry's rule: ^[a-z][a-z0-9_-]{0,15}$)


class Node(models.Model):
    """A game node, as its last heartbeat described it."""

    node_id = models.CharField(max_length=64, unique=True)
    url = models.CharField(max_length=300, help_text="public base URL; clients use url + /play")
    capacity = models.PositiveIntegerField(default=0, help_text="players it accepts")
    max_rooms = models.PositiveIntegerField(default=0, help_text="rooms it accepts (0: unknown)")
    rooms = models.PositiveIntegerField(default=0)
    players = models.PositiveIntegerField(default=0)
    draining = models.BooleanField(default=False)
    modes = models.JSONField(default=list, blank=True, help_text="the modes it runs")
    live = models.JSONField(default=list, blank=True,
                            help_text="its rooms as its last heartbeat listed them (matches)")
    alive = models.BooleanField(default=True)
    # placed but not yet in its counts (lobby.shared.nodes.carry_pending; with Redis the
    # node's hash holds these and the row's stay 0)
    pending = models.PositiveIntegerField(
        default=0, help_text="human seats placed here, not yet seated by the node")
    pending_rooms = models.PositiveIntegerField(
        default=0, help_text="matches placed here, their room not yet open")
    pending_old = models.PositiveIntegerField(
        default=0, help_text="the part of pending placed before pending_since")
    pending_rooms_old = models.PositiveIntegerField(
        default=0, help_text="the part of pending_rooms placed before pending_since")
    pending_since = models.DateTimeField(
        null=True, blank=True, help_text="when the current generation of pending seats began")
    boot = models.CharField(max_length=32, blank=True, default="",
                            help_text="the node process its counters are from (heartbeat boot)")
    seated_total = models.PositiveIntegerField(
        default=0, help_text="player seats the node created, at its last heartbeat")
    rooms_total = models.PositiveIntegerField(
        default=0, help_text="rooms the node opened, at its last heartbeat")
    first_seen = models.DateTimeField(default=timezone.now)
    last_seen = models.DateTimeField(default=timezone.now, db_index=True)

    def __str__(self) -> str:
        return f"{self.node_id} ({self.url})"

    @property
    def load(self) -> float:
        """Share of its player capacity in use, counting seats not yet reported."""
        return (self.players + self.pending) / max(self.capacity, 1)

    def fits(self, seats: int) -> bool:
        """Room for one more match of `seats` humans (bots are not counted)."""
        if self.players + self.pending + seats > self.capacity:
            return False
        return not self.max_rooms or self.rooms + self.pending_rooms < self.max_rooms


class Match(models.Model):
    ACTIVE, FINISHED, ABORTED = "active", "finished", "aborted"
    STATUSES = [(ACTIVE, "active"), (FINISHED, "finished"), (ABORTED, "aborted")]

    match_id = models.CharField(max_length=32, primary_key=True)
    game = models.CharField(max_length=NAME_MAX, db_index=True, help_text="the mode's game")
    mode = models.CharField(max_length=NAME_MAX)
    node = models.ForeignKey(Node, on_delete=models.SET_NULL, null=True, related_name="matches")
    status = models.CharField(max_length=10, choices=STATUSES, default=ACTIVE, db_index=True)
    seats = models.PositiveSmallIntegerField(help_text="human seats")
    bots = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    ended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    reason = models.CharField(max_length=32, blank=True)
    ticks = models.PositiveIntegerField(null=True, blank=True)
    result = models.JSONField(null=True, blank=True, help_text="players as the node reported")

    class Meta:
        verbose_name_plural = "matches"

    def __str__(self) -> str:
        return f"{self.match_id} [{self.status}]"


class Ticket(models.Model):
    WAITING, MATCHED, CANCELLED = "waiting", "matched", "cancelled"
    STATUSES = [(WAITING, "waiting"), (MATCHED, "matched"), (CANCELLED, "cancelled")]

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="tickets")
    mode = models.CharField(max_length=NAME_MAX)
    rating = models.FloatField(help_text="the player's rating when queued")
    status = models.CharField(max_length=10, choices=STATUSES, default=WAITING)
    created_at = models.DateTimeField(default=timezone.now)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["user"], condition=Q(status="waiting"),
                                    name="one_waiting_ticket_per_user"),
        ]
        indexes = [models.Index(fields=["status", "mode"], name="ticket_status_mode")]

    def __str__(self) -> str:
        return f"ticket {self.pk} {self.user_id} [{self.status}]"


class MatchPlayer(models.Model):
    """A human seat in a match and, once the result is in, that player's line of history."""

    match = models.ForeignKey(Match, on_delete=models.CASCADE, related_name="players")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                             related_name="seats")
    ticket = models.OneToOneField(Ticket, on_delete=models.SET_NULL, null=True, blank=True,
                                  related_name="seat")
    active = models.BooleanField(default=True, help_text="the match is still running")
    score = models.IntegerField(null=True, blank=True)
    stats = models.JSONField(default=dict, blank=True,
                             help_text="the game's result columns: name -> value")
    placement = models.PositiveSmallIntegerField(null=True, blank=True)
    points = models.PositiveIntegerField(default=0, help_text="weekly leaderboard points")
    rating_before = models.FloatField(null=True, blank=True)
    rating_after = models.FloatField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["match", "user"], name="one_seat_per_match"),
            models.UniqueConstraint(fields=["user"], condition=Q(active=True),
                                    name="one_active_match_per_user"),
        ]

    def __str__(self) -> str:
        return f"{self.user_id} in {self.match_id}"

    @property
    def rating_change(self) -> float | None:
        if self.rating_before is None or self.rating_after is None:
            return None
        return self.rating_after - self.rating_before


class SeenNonce(models.Model):
    """Nonces of signed node requests seen within the replay window."""

    node_id = models.CharField(max_length=64)
    nonce = models.CharField(max_length=64)
    seen_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["node_id", "nonce"], name="nonce_once")]


class MatcherState(models.Model):
    """A single row: its lock serializes matcher passes across worker processes."""

    last_run = models.FloatField(default=0.0, help_text="Unix time of the last pass")
