"""Signed node -> lobby requests: `engine.auth.verify_request` plus the nonce replay store
(`lobby.shared.nonces`)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import wraps

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from engine.auth import derive_node_key, verify_request
from lobby.api import BadRequest, error, json_body
from lobby.shared import state


class Forbidden(Exception):
    """A node request that is unsigned, forged, stale or replayed (403)."""


def signed_node(request: HttpRequest, body: bytes) -> str:
    """The node id of a correctly signed, fresh, first-seen request over `body` (raw:
    lobby.replays reads its large bodies itself); `Forbidden` otherwise."""
    now = time.time()
    try:
        # each node signs with its own key, derived from the master (engine/auth.py)
        key = derive_node_key(settings.NODE_SECRET, request.headers.get("X-Arena-Node", ""))
        node_id, nonce = verify_request(key, headers=request.headers, method=request.method,
                                        path=request.path, body=body, now=now)
    except ValueError as exc:
        raise Forbidden(f"forbidden: {exc}") from None
    if len(node_id) > 64:
        raise Forbidden("forbidden: node id too long")
    if not state().nonces.claim(node_id, nonce, now):
        raise Forbidden("forbidden: replayed nonce")
    return node_id


def signed_node_view(view: Callable[[HttpRequest, dict, str], HttpResponse]) -> Callable:
    """POST only; 403 for unsigned, forged, stale or replayed; 400 for a bad JSON body.

    The view gets (request, body as dict, node id from the signed headers).
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return error(405, "method not allowed; use POST")
        try:
            node_id = signed_node(request, request.body)
        except Forbidden as exc:
            return error(403, str(exc))
        try:
            return view(request, json_body(request, required=True), node_id)
        except BadRequest as exc:
            return error(400, str(exc))

    return wrapper
