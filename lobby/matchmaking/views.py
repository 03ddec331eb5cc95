"""Queue and modes API, queue pages, game page, node heartbeat."""

from __future__ import annotations

import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from lobby import games
from lobby.api import api_view, error, json_body
from lobby.shared import NodeInfo, state
from lobby.shared.nodes import OK, mode_state

from . import services
from .internal import signed_node_view
from .services import QueueError
from .validate import (
    MAX_NODE_MODES,
    NODE_ID_RE,
    URL_RE,
    boolean,
    integer,
    live_rooms,
    names,
    node_counters,
    string,
)


def request_passes() -> bool:
    """Whether requests run matcher passes: not when the ASGI lifespan's background matcher
    runs in this process, nor with MATCHER_IN_REQUESTS=0 (run_matcher does it)."""
    from lobby.realtime.matcher import running

    return settings.MATCHER_IN_REQUESTS and not running()


@api_view(("GET", "POST", "DELETE"), login=True)
def api_queue(request: HttpRequest) -> JsonResponse:
    if request.method == "POST":
        data = json_body(request)
        try:
            ticket = services.join_queue(request.user, data.get("mode"))
        except QueueError as exc:
            return error(exc.status, str(exc), code=exc.code)
        return JsonResponse({"ticket_id": ticket.id, "status": "waiting", "mode": ticket.mode})
    if request.method == "DELETE":
        try:
            return JsonResponse({"status": services.cancel_queue(request.user)})
        except QueueError as exc:
            return error(exc.status, str(exc), code=exc.code, status="matched")
    if request_passes():
        services.maybe_run_pass()
    return JsonResponse(services.queue_state(request.user))


def mode_list(now: float | None = None) -> list[dict]:
    """The offered modes, each with whether a live node can take a match of it now."""
    alive = state().nodes.alive(now or time.time())  # one read for every mode
    return [{**m.as_json(), "available": mode_state(alive, m.name) == OK}
            for m in games.offered().values()]


@api_view(("GET",))
def api_modes(request: HttpRequest) -> JsonResponse:
    """The modes a ticket may name, from the game registry (docs/lobby.md)."""
    return JsonResponse({"default": games.default_mode(), "modes": mode_list()})


@api_view(("GET",), login=True)
def api_presence(request: HttpRequest) -> JsonResponse:
    """Where the player is playing (`lobby.shared.presence`) and players per node."""
    presence = state().presence
    return JsonResponse({"presence": presence.where(request.user.id), "nodes": presence.online()})


@login_required
def queue_page(request: HttpRequest) -> HttpResponse:
    """Queue status; refreshes itself (meta refresh) while waiting, no JS needed."""
    if request_passes():
        services.maybe_run_pass()
    state = services.queue_state(request.user)
    if state["status"] == "matched":
        return redirect("game")
    return render(request, "matchmaking/queue.html", {
        "state": state, "refresh": 2 if state["status"] == "waiting" else None,
        "max_wait": settings.MATCH_MAX_WAIT, "modes": mode_list(),
        "default_mode": games.default_mode()})


@login_required
@require_POST
def queue_join(request: HttpRequest) -> HttpResponse:
    try:
        services.join_queue(request.user, request.POST.get("mode") or None)
    except QueueError as exc:
        messages.info(request, str(exc))
    return redirect("queue")


@login_required
@require_POST
def queue_cancel(request: HttpRequest) -> HttpResponse:
    try:
        if services.cancel_queue(request.user) == "cancelled":
            messages.info(request, "Left the queue.")
    except QueueError as exc:
        messages.info(request, str(exc))
    return redirect("home")


def game_page(request: HttpRequest) -> HttpResponse:
    """Loads the browser client; it asks /api/queue for its seat and connects to the node."""
    return render(request, "matchmaking/game.html")


@signed_node_view
def heartbeat(request: HttpRequest, data: dict, node_id: str) -> JsonResponse:
    body_node = string(data, "node_id", 64, NODE_ID_RE)
    if body_node != node_id:
        return error(403, "node_id differs from the signed X-Arena-Node")
    info = NodeInfo(
        node_id=node_id, url=string(data, "url", 300, URL_RE).rstrip("/"),
        capacity=integer(data, "capacity", 0, 10_000_000),
        max_rooms=integer(data, "max_rooms", 0, 1_000_000) if "max_rooms" in data else 0,
        rooms=integer(data, "rooms", 0, 1_000_000),
        players=integer(data, "players", 0, 10_000_000),
        draining=boolean(data, "draining", False), last_seen=time.time(),
        modes=names(data, "modes", MAX_NODE_MODES) if "modes" in data else (),
        live=live_rooms(data, "matches") if "matches" in data else (),
        **node_counters(data))
    state().nodes.heartbeat(info)
    return JsonResponse({"ok": True})
