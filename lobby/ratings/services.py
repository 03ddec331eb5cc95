"""Results ingestion (idempotent by match id) and the leaderboards."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum

from lobby.accounts.models import Profile
from lobby.api import BadRequest
from lobby.matchmaking.models import Match, MatchPlayer
from lobby.matchmaking.services import to_dt
from lobby.matchmaking.validate import NODE_ID_RE, boolean, integer, string

from .elo import ffa_deltas, placement_points
from .models import ResultReport

MAX_RESULT_PLAYERS = 64
PAGE_SIZE = 20


class ResultError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def parse_result(data: dict) -> dict[str, Any]:
    """Validate a results body (docs/protocol.md); BadRequest names the first bad field."""
    out = {
        "match_id": string(data, "match_id", 32),
        "node_id": string(data, "node_id", 64, NODE_ID_RE),
        "status": data.get("status"),
        "reason": data.get("reason", ""),
        "ticks": integer(data, "ticks", 0) if "ticks" in data else None,
    }
    if out["status"] not in (Match.FINISHED, Match.ABORTED):
        raise BadRequest("status must be \"finished\" or \"aborted\"")
    if not isinstance(out["reason"], str):
        raise BadRequest("reason must be a string")
    out["reason"] = out["reason"][:32]  # free text: kept short, never refused for length
    players = data.get("players")
    if not isinstance(players, list) or len(players) > MAX_RESULT_PLAYERS:
        raise BadRequest(f"players must be a list of at most {MAX_RESULT_PLAYERS}")
    rows, humans = [], set()
    for p in players:
        if not isinstance(p, dict):
            raise BadRequest("each player must be an object")
        name = p.get("name", "")
        if not isinstance(name, str):
            raise BadRequest("player name must be a string")
        row = {"user_id": integer(p, "user_id", 0), "name": name[:64],
               "score": integer(p, "score", -10**9, 10**9), "kills": integer(p, "kills"),
               "deaths": integer(p, "deaths"),
               "placement": integer(p, "placement", 1, MAX_RESULT_PLAYERS),
               "bot": boolean(p, "bot")}
        if not row["bot"]:
            if row["user_id"] == 0:
                raise BadRequest("a human player needs a user_id")
            if row["user_id"] in humans:
                raise BadRequest(f"user {row['user_id']} appears twice")
            humans.add(row["user_id"])
        rows.append(row)
    out["players"] = sorted(rows, key=lambda r: r["placement"])
    return out


def ingest_result(data: dict, node_id: str) -> dict[str, Any]:
    """Apply a node's result once. Returns the answer body; raises ResultError/BadRequest."""
    result = parse_result(data)
    if result["node_id"] != node_id:
        raise ResultError(403, "node_id differs from the signed X-Arena-Node")
    now = to_dt(time.time())
    with transaction.atomic():
        match = (Match.objects.select_for_update(of=("self",)).select_related("node")
                 .filter(pk=result["match_id"]).first())
        if match is None:
            raise ResultError(404, "unknown match")
        if match.node is None or match.node.node_id != node_id:
            raise ResultError(403, "this match is not assigned to this node")
        report, created = ResultReport.objects.get_or_create(
            match_id=match.match_id,
            defaults={"node_id": node_id, "status": result["status"], "body": data})
        if not created:
            ResultReport.objects.filter(pk=report.pk).update(duplicates=F("duplicates") + 1)
            return {"ok": True, "duplicate": True}
        if match.status != Match.ACTIVE:  # the lobby aborted it already (node lost, timeout)
            return {"ok": True, "duplicate": True, "status": match.status}
        seats = {s.user_id: s for s in match.players.select_for_update()}
        humans = [p for p in result["players"] if not p["bot"]]
        for p in humans:
            if p["user_id"] not in seats:
                raise ResultError(400, f"user {p['user_id']} does not belong to this match")
        _apply(match, seats, humans, result, len(result["players"]))
        match.status = result["status"]
        match.reason = result["reason"] or result["status"]
        match.ticks = result["ticks"]
        match.result = result["players"]
        match.ended_at = now
        match.save(update_fields=["status", "reason", "ticks", "result", "ended_at"])
        match.players.update(active=False)
        ResultReport.objects.filter(pk=report.pk).update(applied=True)
    return {"ok": True, "duplicate": False}


def _apply(match: Match, seats: dict[int, MatchPlayer], humans: list[dict], result: dict,
           n_players: int) -> None:
    """History lines for every reported human; ratings and points only if finished."""
    rated = result["status"] == Match.FINISHED
    profiles = {p.user_id: p for p in Profile.objects.select_for_update()
                .filter(user_id__in=[h["user_id"] for h in humans]).order_by("user_id")}
    humans = [h for h in humans if h["user_id"] in profiles]
    deltas = (ffa_deltas([profiles[h["user_id"]].rating for h in humans],
                         [h["placement"] for h in humans], settings.RATING_K)
              if rated else [0.0] * len(humans))
    for h, delta in zip(humans, deltas, strict=True):
        seat, prof = seats[h["user_id"]], profiles[h["user_id"]]
        seat.score, seat.kills, seat.deaths = h["score"], h["kills"], h["deaths"]
        seat.placement = h["placement"]
        if rated:
            seat.rating_before = prof.rating
            prof.rating += delta
            seat.rating_after = prof.rating
            seat.points = placement_points(n_players, h["placement"])
            prof.games += 1
            prof.wins += h["placement"] == 1
    MatchPlayer.objects.bulk_update(
        [seats[h["user_id"]] for h in humans],
        ["score", "kills", "deaths", "placement", "rating_before", "rating_after", "points"])
    if rated:
        Profile.objects.bulk_update(list(profiles.values()), ["rating", "games", "wins"])


# --- leaderboards -----------------------------------------------------------------------

def week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 UTC of the current week."""
    now = now or datetime.now(tz=UTC)
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def all_time_board() -> QuerySet:
    return (Profile.objects.filter(games__gt=0).order_by("-rating", "user_id")
            .values("user_id", "user__username", "rating", "games", "wins", "guest"))


def week_board() -> QuerySet:
    return (MatchPlayer.objects
            .filter(match__status=Match.FINISHED, match__ended_at__gte=week_start())
            .values("user_id", "user__username")
            .annotate(points=Sum("points"), games=Count("id"),
                      wins=Count("id", filter=Q(placement=1)))
            .order_by("-points", "-wins", "user__username"))


def board_page(board: str, page: int) -> tuple[Paginator, Any, list[dict]]:
    """(paginator, page, rows with their rank). Raises EmptyPage / PageNotAnInteger."""
    query = week_board() if board == "week" else all_time_board()
    paginator = Paginator(query, PAGE_SIZE)
    current = paginator.page(page)
    rows = []
    for offset, row in enumerate(current.object_list):
        rows.append({"rank": current.start_index() + offset, "user_id": row["user_id"],
                     "username": row["user__username"],
                     "rating": round(row["rating"], 1) if "rating" in row else None,
                     "points": row.get("points"), "games": row["games"], "wins": row["wins"]})
    return paginator, current, rows
