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


def signed_node_view(view: Callable[[HttpRequest, dict, str], HttpResponse]) -> Callable:
    """POST only; 403 for unsigned, forged, stale or replayed; 400 for a bad JSON body.

    The view gets (request, body as dict, node id from the signed headers).
    """

    @csrf_exempt
    @wraps(view)
    def wrapper(request: HttpRequest) -> HttpResponse:
        if request.method != "POST":
            return error(405, "method not allowed; use POST")
        now = time.time()
        try:
            # each node signs with its own key, derived from the master (engine/auth.py)
            key = derive_node_key(settings.NODE_SECRET, request.headers.get("X-Arena-Node", ""))
            node_id, nonce = verify_request(key, headers=request.headers,
                                            method=request.method, path=request.path,
                                            body=request.body, now=now)
        except ValueError as exc:
            return error(403, f"forbidden: {exc}")
        if len(node_id) > 64:
            return error(403, "forbidden: node id too long")
        if not state().nonces.claim(node_id, nonce, now):
            return error(403, "forbidden: replayed nonce")
        try:
            return view(request, json_body(request, required=True), node_id)
        except BadRequest as exc:
            return error(400, str(exc))

    return wrapper
