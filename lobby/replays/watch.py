"""The replay page: a finished match watched again in the browser (static/src/replay.js)
from its frames file, over plain HTTP (docs/client.md, "Replay player")."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.urls import reverse

from lobby import games
from lobby.matchmaking.models import Match

from .models import MatchReplay


def watch(request: HttpRequest, match_id: str) -> HttpResponse:
    """GET /matches/<id>/replay/: the player, or why there is nothing to watch (yet)."""
    match = get_object_or_404(Match, pk=match_id)
    row = MatchReplay.objects.filter(pk=match_id).first()
    return render(request, "replays/watch.html", {
        "match": match, "game": games.game(match.game), "replay": row,
        "has_frames": bool(row and row.frames),
        "frames_url": reverse("match_frames", args=[match_id])}, status=200)
