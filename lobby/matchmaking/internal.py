"""Signed node -> lobby requests: `engine.auth.verify_request` plus a nonce replay store."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from datetime import timedelta
from functools import wraps

from django.conf import settings
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt

from engine.auth import REQUEST_MAX_SKEW, verify_request
from lobby.api import BadRequest, error, json_body

from .models import SeenNonce
from .services import to_dt

PURGE_ODDS = 50  # one request in 50 deletes nonces older than the replay window


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
            node_id, nonce = verify_request(settings.NODE_SECRET, headers=request.headers,
                                            method=request.method, path=request.path,
                                            body=request.body, now=now)
        except ValueError as exc:
            return error(403, f"forbidden: {exc}")
        if len(node_id) > 64:
            return error(403, "forbidden: node id too long")
        try:
            with transaction.atomic():
                SeenNonce.objects.create(node_id=node_id, nonce=nonce, seen_at=to_dt(now))
        except IntegrityError:
            return error(403, "forbidden: replayed nonce")
        if random.randrange(PURGE_ODDS) == 0:
            SeenNonce.objects.filter(
                seen_at__lt=to_dt(now) - timedelta(seconds=2 * REQUEST_MAX_SKEW)).delete()
        try:
            return view(request, json_body(request, required=True), node_id)
        except BadRequest as exc:
            return error(400, str(exc))

    return wrapper
