"""The node's replay upload (signed, raw bytes) and the files served for watching."""

from __future__ import annotations

import re

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponse,
    HttpResponseNotModified,
    JsonResponse,
)
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from lobby.accounts import counters
from lobby.api import error
from lobby.matchmaking.internal import Forbidden, signed_node

from .models import MatchReplay
from .services import MAX_UPLOAD_BYTES, UploadError, store_upload

CACHE_CONTROL = "public, max-age=86400"   # a match's files never change (until purged)
MATCH_ID_RE = re.compile(r"[A-Za-z0-9_.:-]{1,32}")   # Match.match_id's length


@csrf_exempt
def upload(request: HttpRequest, match_id: str) -> HttpResponse:
    """POST /api/internal/replays/<match_id>: the replay file, application/octet-stream,
    signed like every node request (docs/protocol.md). Read here, not by Django's
    `request.body` (whose DATA_UPLOAD_MAX_MEMORY_SIZE is far below a replay's bound)."""
    if request.method != "POST":
        return error(405, "method not allowed; use POST")
    try:
        length = int(request.META.get("CONTENT_LENGTH") or "")
    except ValueError:
        return error(411, "Content-Length required")
    if length > MAX_UPLOAD_BYTES:
        counters.incr("arena_lobby_refused_total", limit="replay_upload_bytes")
        return error(413, f"a replay file is at most {MAX_UPLOAD_BYTES} bytes")
    if not MATCH_ID_RE.fullmatch(match_id):
        return error(404, "unknown match")
    data = request.read(length)
    try:
        node_id = signed_node(request, data)
    except Forbidden as exc:
        return error(403, str(exc))
    if not data:
        return error(400, "an empty replay")
    try:
        return JsonResponse(store_upload(match_id, node_id, data))
    except UploadError as exc:
        return error(exc.status, str(exc))


def _serve(request: HttpRequest, match_id: str, which: str) -> HttpResponse:
    row = MatchReplay.objects.filter(pk=match_id).first()
    field = getattr(row, which) if row is not None else None
    if not field:
        return error(404, f"no {which} for this match")
    etag = f'"{row.sha256[:32]}-{which}"'   # the frames are a function of the replay
    if etag in request.headers.get("If-None-Match", ""):
        response: HttpResponse = HttpResponseNotModified()
    else:
        try:
            response = FileResponse(field.open("rb"), content_type="application/octet-stream")
        except OSError:
            return error(404, f"no {which} for this match")
        response["Content-Length"] = str(row.frames_size if which == "frames" else row.size)
    response["ETag"] = etag
    response["Cache-Control"] = CACHE_CONTROL
    return response


@require_GET
def frames(request: HttpRequest, match_id: str) -> HttpResponse:
    """GET /matches/<id>/replay.frames: the frames file (engine/frames.py), a zlib stream."""
    return _serve(request, match_id, "frames")


@require_GET
def replay_file(request: HttpRequest, match_id: str) -> HttpResponse:
    """GET /matches/<id>/replay.replay: the replay file as the node recorded it."""
    return _serve(request, match_id, "file")
