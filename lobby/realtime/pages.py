""""Live now" (the matches in progress, pushed over the event stream) and spectating:
the lobby issues a spectator seat token (`role: "spectator"`, docs/protocol.md) for any
match in progress, to the signed-in visitor it names."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render

from engine.auth import issue_seat_token
from lobby.api import api_view, error, json_body
from lobby.matchmaking.models import Match

from .events import live_state


def spectator_seat(user, match_id: object) -> dict | None:
    """`{"match_id", "node_url", "token", "game", "mode"}` for a match in progress, or None."""
    if not isinstance(match_id, str) or len(match_id) > 32:
        return None
    match = (Match.objects.select_related("node")
             .filter(pk=match_id, status=Match.ACTIVE, node__isnull=False).first())
    if match is None:
        return None
    token = issue_seat_token(
        settings.SEAT_SECRET, user_id=user.id, name=user.username, match_id=match.match_id,
        node_id=match.node.node_id, now=time.time(), ttl=settings.SEAT_TOKEN_TTL,
        role="spectator", mode=match.mode, seats=match.seats, bots=match.bots)
    return {"match_id": match.match_id, "node_url": match.node.url, "token": token,
            "game": match.game, "mode": match.mode}


@api_view(("POST",), login=True)
def api_spectate(request: HttpRequest) -> JsonResponse:
    """`POST /api/spectate {"match_id"}`: a spectator seat; 404 when the match is not in
    progress."""
    seat = spectator_seat(request.user, json_body(request).get("match_id"))
    if seat is None:
        return error(404, "no such match in progress")
    return JsonResponse(seat)


def live_page(request: HttpRequest) -> HttpResponse:
    """The matches in progress; the page's script keeps the list current from the event
    stream (`/api/events?live=1`), without it a meta refresh (in <noscript>) does."""
    return render(request, "realtime/live.html", {"live": live_state()})


@login_required
def spectate_page(request: HttpRequest, match_id: str) -> HttpResponse:
    seat = spectator_seat(request.user, match_id)
    if seat is None:
        raise Http404("no such match in progress")
    return render(request, "realtime/spectate.html", {"seat": seat})
