"""`GET /api/events`: the signed-in browser's event stream (Server-Sent Events).

The view is synchronous (the session and user are read in the request's pool thread, as
for every other request: `lobby.realtime.asgi.SyncRequests`) and answers a
StreamingHttpResponse over an async generator, which the ASGI server then drives on the
event loop: an idle stream is a coroutine waiting on its bus subscription, not a thread
and not a database connection (each read runs on the request threads, whose connections
persist: `lobby.realtime.asgi.request_threads`).

On connect the stream sends `state` (what `GET /api/queue` answers, with a fresh seat
token when matched) and, with `?live=1`, `live`; then the events of the player's channel
(and of `live`), each with an `id:` that the browser's EventSource sends back as
`Last-Event-ID` when it reconnects, so that nothing published meanwhile is missed.
Comments every `SSE_HEARTBEAT` seconds keep proxies from closing an idle stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIRequest
from django.db import close_old_connections
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse

from engine.auth import issue_seat_token
from lobby.api import error
from lobby.matchmaking.services import queue_state
from lobby.shared.bus import bus

from .asgi import in_request_thread
from .events import LIVE, live_state, user_channel

STREAMS = {"open": 0, "opened": 0, "refused": 0}  # this process's counts
RETRY_MS = 2000  # the browser's reconnection delay (`retry:`)
SEPARATOR = "~"  # between the per-channel ids of one event id


def pooled(fn: Callable[..., Any]) -> Callable[..., Any]:
    """`fn` on a request thread (`in_request_thread`), with that thread's persistent database
    connection checked before and after as a request's is (closed when broken or older
    than CONN_MAX_AGE). Opening a connection per read cost more than the read itself
    (SQLite: the schema parsed again, no statement cache)."""

    def run(*args: Any) -> Any:
        close_old_connections()
        try:
            return fn(*args)
        finally:
            close_old_connections()

    async def call(*args: Any) -> Any:
        return await in_request_thread(run, *args)

    return call


def encode_id(cursors: dict[str, str], channels: list[str]) -> str:
    return SEPARATOR.join(cursors.get(c) or "" for c in channels)


def decode_id(raw: str | None, channels: list[str]) -> dict[str, str | None]:
    parts = (raw or "").split(SEPARATOR)[:len(channels)] if raw and len(raw) <= 200 else []
    parts += [""] * (len(channels) - len(parts))
    return {c: (p or None) for c, p in zip(channels, parts, strict=True)}


def with_token(user, event: dict) -> dict:
    """The `matched` answer of GET /api/queue from a `matched` event: a seat token issued
    now, to this stream's user (HMAC only)."""
    seat = {k: v for k, v in event.items() if k not in ("type", "node_id")}
    seat["token"] = issue_seat_token(
        settings.SEAT_SECRET, user_id=user.id, name=user.username, match_id=event["match_id"],
        node_id=event["node_id"], now=time.time(), ttl=settings.SEAT_TOKEN_TTL,
        mode=event["mode"], seats=event["seats"], bots=event["bots"])
    return seat


def frame(event: str, data: dict, event_id: str) -> bytes:
    return (f"id: {event_id}\nevent: {event}\ndata: "
            f"{json.dumps(data, separators=(',', ':'))}\n\n").encode()


def events(request: HttpRequest) -> HttpResponse:
    if request.method != "GET":
        return error(405, "method not allowed; use GET")
    if not isinstance(request, ASGIRequest):  # WSGI would buffer the endless body in a thread
        return error(501, "event streams need the ASGI server (uvicorn); poll GET /api/queue")
    user = request.user
    user.is_authenticated  # noqa: B018 - loaded here, in the request's thread
    live = request.GET.get("live") == "1"
    if not user.is_authenticated and not live:
        return error(401, "not signed in")
    if STREAMS["open"] >= settings.SSE_MAX_STREAMS:
        STREAMS["refused"] += 1
        response = error(503, "too many event streams on this lobby process; poll GET /api/queue")
        response["Retry-After"] = "5"
        return response
    # a visitor not signed in may follow `live` only (the Live now page)
    channels = ([user_channel(user.id)] if user.is_authenticated else []) + ([LIVE] if live else [])
    last = request.headers.get("Last-Event-ID") or request.GET.get("last_event_id")
    response = StreamingHttpResponse(stream(user, channels, decode_id(last, channels)),
                                     content_type="text/event-stream")
    response["Cache-Control"] = "no-cache, no-transform"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return response


async def stream(user, channels: list[str], cursors: dict[str, str | None]) -> AsyncIterator[bytes]:
    STREAMS["open"] += 1
    STREAMS["opened"] += 1
    sub = None
    try:
        sub = await bus().subscribe(cursors)  # first: nothing published from now on is lost
        delivered = dict(sub.start)  # the id of each frame: what the browser has seen
        replayed = sub.queue.qsize()  # the first events: published before this stream
        yield f"retry: {RETRY_MS}\n\n".encode()
        # the state as it is now (fresh token when matched); then what happened since
        if user.is_authenticated:
            yield frame("state", await pooled(queue_state)(user), encode_id(delivered, channels))
        if LIVE in channels:
            yield frame("live", await pooled(live_state)(), encode_id(delivered, channels))
        ends = time.monotonic() + settings.SSE_MAX_AGE
        while time.monotonic() < ends:
            if sub.overflow and sub.queue.empty():
                return  # too far behind: the browser reconnects and replays
            event = await sub.get(settings.SSE_HEARTBEAT)
            if event is None:
                yield b": keep-alive\n\n"
                continue
            delivered[event.channel] = event.id
            data = event.data
            kind = data.get("type", "message")
            if kind == "matched":  # the owner's own stream adds the seat (fresh token)
                if replayed > 0:  # published before this stream: is the seat still there?
                    state = await pooled(queue_state)(user)
                    if state.get("match_id") != data.get("match_id"):
                        kind, data = "state", state
                    else:
                        data = state
                else:
                    data = with_token(user, data)
            replayed -= 1
            yield frame(kind, data, encode_id(delivered, channels))
    finally:
        STREAMS["open"] -= 1
        if sub is not None:
            await sub.close()
