"""Results ingestion (idempotent by match id), per-game ratings and the leaderboards."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import Count, F, Q, QuerySet, Sum

from lobby import games
from lobby.accounts.models import Profile
from lobby.api import BadRequest
from lobby.matchmaking.models import NAME_MAX, Match, MatchPlayer
from lobby.matchmaking.services import to_dt
from lobby.matchmaking.validate import NODE_ID_RE, boolean, integer, string
from lobby.replays import services as replays

from .elo import ffa_deltas, placement_points
from .models import Rating, ResultReport

MAX_RESULT_PLAYERS = 64
MAX_STATS = 32  # result columns per player row
MAX_STAT_NAME = 32
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
        "game": string(data, "game", NAME_MAX) if "game" in data else None,
        "mode": string(data, "mode", NAME_MAX) if "mode" in data else None,
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
               "score": integer(p, "score", -10**9, 10**9),
               "placement": integer(p, "placement", 1, MAX_RESULT_PLAYERS),
               "bot": boolean(p, "bot"), "stats": stats(p)}
        if not row["bot"]:
            if row["user_id"] == 0:
                raise BadRequest("a human player needs a user_id")
            if row["user_id"] in humans:
                raise BadRequest(f"user {row['user_id']} appears twice")
            humans.add(row["user_id"])
        rows.append(row)
    out["players"] = sorted(rows, key=lambda r: r["placement"])
    return out


def stats(p: dict) -> dict[str, int]:
    """A row's `stats`: the game's result columns by name (optional: {})."""
    value = p.get("stats", {})
    if (not isinstance(value, dict) or len(value) > MAX_STATS
            or not all(isinstance(k, str) and 0 < len(k) <= MAX_STAT_NAME for k in value)):
        raise BadRequest(f"stats must be an object of at most {MAX_STATS} columns "
                         f"(names of 1 to {MAX_STAT_NAME} characters)")
    for k, v in value.items():
        if isinstance(v, bool) or not isinstance(v, int) or not -10**9 <= v <= 10**9:
            raise BadRequest(f"stats.{k} must be an integer in [-1000000000, 1000000000]")
    return dict(value)


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
        for key in ("game", "mode"):  # optional; when sent, the match's own
            if result[key] is not None and result[key] != getattr(match, key):
                raise ResultError(400, f"{key} {result[key]!r} is not this match's "
                                       f"({getattr(match, key)!r})")
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
        # REPLAY_REQUIRED: rating changes wait until the replay re-derives this result
        rate_now = not replays.defer_ratings()
        _apply(match, seats, humans, result, len(result["players"]), rate=rate_now)
        match.status = result["status"]
        match.reason = result["reason"] or result["status"]
        match.ticks = result["ticks"]
        match.result = result["players"]
        match.ended_at = now
        match.save(update_fields=["status", "reason", "ticks", "result", "ended_at"])
        match.players.update(active=False)
        replays.result_ingested(match, rated=rate_now)
        ResultReport.objects.filter(pk=report.pk).update(applied=True)
    return {"ok": True, "duplicate": False}


def ratings_for_update(game: str, user_ids: list[int]) -> dict[int, Rating]:
    """The players' `Rating` rows in `game`, created at RATING_START where missing, locked."""
    Rating.objects.bulk_create([Rating(user_id=u, game=game) for u in user_ids],
                               ignore_conflicts=True)
    return {r.user_id: r for r in Rating.objects.select_for_update()
            .filter(game=game, user_id__in=user_ids).order_by("user_id")}


def _apply(match: Match, seats: dict[int, MatchPlayer], humans: list[dict], result: dict,
           n_players: int, *, rate: bool = True) -> None:
    """History lines for every reported human; ratings (in the match's game), points and
    totals only if finished and `rate` (lobby.replays applies them after verification)."""
    rated = rate and result["status"] == Match.FINISHED
    profiles = {p.user_id: p for p in Profile.objects.select_for_update()
                .filter(user_id__in=[h["user_id"] for h in humans]).order_by("user_id")}
    humans = [h for h in humans if h["user_id"] in profiles]
    ratings = ratings_for_update(match.game, [h["user_id"] for h in humans]) if rated else {}
    deltas = (ffa_deltas([ratings[h["user_id"]].rating for h in humans],
                         [h["placement"] for h in humans], settings.RATING_K)
              if rated else [0.0] * len(humans))
    for h, delta in zip(humans, deltas, strict=True):
        seat = seats[h["user_id"]]
        seat.score, seat.stats, seat.placement = h["score"], h["stats"], h["placement"]
        if rated:
            rating, prof = ratings[h["user_id"]], profiles[h["user_id"]]
            seat.rating_before = rating.rating
            rating.rating += delta
            seat.rating_after = rating.rating
            seat.points = placement_points(n_players, h["placement"])
            rating.games += 1
            rating.wins += h["placement"] == 1
            prof.games += 1  # the profile's totals count every game
            prof.wins += h["placement"] == 1
    MatchPlayer.objects.bulk_update(
        [seats[h["user_id"]] for h in humans],
        ["score", "stats", "placement", "rating_before", "rating_after", "points"])
    if rated:
        Rating.objects.bulk_update(list(ratings.values()), ["rating", "games", "wins"])
        Profile.objects.bulk_update(list(profiles.values()), ["games", "wins"])


# --- leaderboards -----------------------------------------------------------------------

def week_start(now: datetime | None = None) -> datetime:
    """Monday 00:00 UTC of the current week."""
    now = now or datetime.now(tz=UTC)
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def all_time_board(game: str) -> QuerySet:
    return (Rating.objects.filter(game=game, games__gt=0).order_by("-rating", "user_id")
            .values("user_id", "user__username", "rating", "games", "wins"))


def week_board(game: str) -> QuerySet:
    return (MatchPlayer.objects
            .filter(match__status=Match.FINISHED, match__game=game,
                    match__ended_at__gte=week_start())
            .values("user_id", "user__username")
            .annotate(points=Sum("points"), games=Count("id"),
                      wins=Count("id", filter=Q(placement=1)))
            .order_by("-points", "-wins", "user__username"))


def board_page(game: str, board: str, page: int) -> tuple[Paginator, Any, list[dict]]:
    """(paginator, page, rows with their rank) of one game's board. Raises EmptyPage /
    PageNotAnInteger."""
    query = week_board(game) if board == "week" else all_time_board(game)
    paginator = Paginator(query, PAGE_SIZE)
    current = paginator.page(page)
    rows = []
    for offset, row in enumerate(current.object_list):
        rows.append({"rank": current.start_index() + offset, "user_id": row["user_id"],
                     "username": row["user__username"],
                     "rating": round(row["rating"], 1) if "rating" in row else None,
                     "points": row.get("points"), "games": row["games"], "wins": row["wins"]})
    return paginator, current, rows


def rank(game: str, rating: float) -> int:
    """1 + the number of players rated in `game` above `rating`."""
    return Rating.objects.filter(game=game, games__gt=0, rating__gt=rating).count() + 1


def columns(game: str, rows: list[dict]) -> list[tuple[str, str]]:
    """The game's result columns (name, label) from the registry; for a game no longer
    registered, the stats names found in `rows` (each row's `stats`)."""
    declared = list(games.game(game).columns)
    if declared:
        return declared
    seen = dict.fromkeys(k for r in rows for k in (r.get("stats") or {}))
    return [(k, k.replace("_", " ").capitalize()) for k in seen]


def player_games(user) -> list[dict]:
    """Per game the player has a rating in or played: rating, rank, matches, wins, and
    the sums of the game's result columns over finished matches."""
    ratings = {r.game: r for r in Rating.objects.filter(user=user)}
    played = (MatchPlayer.objects.filter(user=user, match__status=Match.FINISHED)
              .values_list("match__game", "placement", "score", "stats"))
    totals: dict[str, dict] = {}
    for game_name, placement, score, row_stats in played:
        t = totals.setdefault(game_name, {"played": 0, "wins": 0, "score": 0, "stats": {}})
        t["played"] += 1
        t["wins"] += placement == 1
        t["score"] += score or 0
        for k, v in (row_stats or {}).items():
            if isinstance(v, int):
                t["stats"][k] = t["stats"].get(k, 0) + v
    out = []
    order = [*games.games(), *sorted(set(ratings) | set(totals))]
    for game_name in dict.fromkeys(order):
        if game_name not in ratings and game_name not in totals:
            continue
        r = ratings.get(game_name)
        t = totals.get(game_name, {"played": 0, "wins": 0, "score": 0, "stats": {}})
        cols = columns(game_name, [t])
        out.append({"game": game_name, "title": games.game(game_name).title,
                    "rating": r.rating if r else settings.RATING_START,
                    "rank": rank(game_name, r.rating) if r and r.games else None,
                    "played": t["played"], "wins": t["wins"], "score": t["score"],
                    "columns": [{"name": n, "label": label, "total": t["stats"].get(n, 0)}
                                for n, label in cols]})
    return out


def recent_matches(user, limit: int = 20) -> list[dict]:
    """The player's latest seats, each with its game's result columns as (label, value)."""
    seats = (MatchPlayer.objects.filter(user=user).select_related("match")
             .order_by("-match__created_at")[:limit])
    out = []
    for s in seats:
        cols = columns(s.match.game, [{"stats": s.stats}])
        out.append({"seat": s, "match": s.match, "title": games.game(s.match.game).title,
                    "stats": [(label, (s.stats or {}).get(n)) for n, label in cols]})
    return out


def rating_of(user, game: str) -> float:
    """The player's rating in `game` (RATING_START before their first rated match)."""
    value = (Rating.objects.filter(user=user, game=game)
             .values_list("rating", flat=True).first())
    return settings.RATING_START if value is None else value


def ratings_json(user) -> dict[str, dict]:
    """{game: {"rating", "games", "wins"}} of every game the player is rated in."""
    return {r.game: {"rating": round(r.rating, 1), "games": r.games, "wins": r.wins}
            for r in Rating.objects.filter(user=user).order_by("game")}
