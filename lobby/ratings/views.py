"""Results endpoint (signed, for nodes), leaderboards per game, match detail."""

from __future__ import annotations

from django.core.paginator import EmptyPage, PageNotAnInteger
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, render

from lobby import games
from lobby.api import api_view, error
from lobby.matchmaking.internal import signed_node_view
from lobby.matchmaking.models import Match

from .services import ResultError, board_page, columns, ingest_result

BOARDS = {"all": "All time", "week": "This week"}


@signed_node_view
def results(request: HttpRequest, data: dict, node_id: str) -> JsonResponse:
    try:
        return JsonResponse(ingest_result(data, node_id))
    except ResultError as exc:
        return error(exc.status, str(exc))


def _board(request: HttpRequest) -> str:
    return request.GET.get("board") if request.GET.get("board") in BOARDS else "all"


def leaderboard(request: HttpRequest) -> HttpResponse:
    board = _board(request)
    game = request.GET.get("game")
    if game not in games.games():
        game = games.default_game()
    try:
        paginator, page, rows = board_page(game, board, int(request.GET.get("page", 1)))
    except (ValueError, EmptyPage, PageNotAnInteger):
        paginator, page, rows = board_page(game, board, 1)
    return render(request, "ratings/leaderboard.html", {
        "board": board, "boards": BOARDS, "page": page, "rows": rows, "paginator": paginator,
        "game": games.game(game), "games": list(games.games().values())})


@api_view(("GET",))
def api_leaderboard(request: HttpRequest) -> JsonResponse:
    board = request.GET.get("board", "all")
    if board not in BOARDS:
        return error(400, "board must be \"all\" or \"week\"")
    game = request.GET.get("game") or games.default_game()
    if game not in games.games():
        return error(400, f"unknown game; one of {', '.join(games.games())}")
    try:
        number = int(request.GET.get("page", "1"))
        if number < 1:
            raise ValueError
    except ValueError:
        return error(400, "page must be a positive integer")
    try:
        paginator, page, rows = board_page(game, board, number)
    except EmptyPage:
        return error(404, "no such page")
    return JsonResponse({"game": game, "board": board, "page": page.number,
                         "pages": paginator.num_pages, "count": paginator.count, "rows": rows})


def match_detail(request: HttpRequest, match_id: str) -> HttpResponse:
    match = get_object_or_404(Match.objects.select_related("node"), pk=match_id)
    seats = {s.user_id: s for s in match.players.select_related("user")}
    cols = columns(match.game, match.result or [])
    rows = []
    if match.result:
        for p in match.result:
            seat = seats.get(p["user_id"]) if not p["bot"] else None
            stats = p.get("stats") or {}
            rows.append({**p, "username": seat.user.username if seat else p["name"],
                         "change": seat.rating_change if seat else None,
                         "human": seat is not None, "values": [stats.get(n) for n, _ in cols]})
    else:
        rows = [{"username": s.user.username, "human": True, "bot": False, "placement": None,
                 "score": None, "values": [None] * len(cols), "change": None}
                for s in seats.values()]
    return render(request, "ratings/match.html", {
        "match": match, "rows": rows, "columns": [label for _, label in cols],
        "game": games.game(match.game)})
