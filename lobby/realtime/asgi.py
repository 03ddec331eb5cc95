"""The lobby's ASGI application: Django's, plus the lifespan (the background matcher,
the bus's connections) and the event stream served outside Django's per-request thread
context.

Django runs each request inside an asgiref `ThreadSensitiveContext`: the first synchronous
step of the request (a sync middleware, the session load) creates a one-thread executor
that lives until the response ends. For a stream that lasts minutes that is an idle
thread per browser, exactly what an event loop is for avoiding; so `STREAM_PATHS` are
handled without that context (their synchronous steps then share asgiref's single
thread, briefly, at connect) and every other request as Django does.
"""

from __future__ import annotations

import logging
from typing import Any

from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

log = logging.getLogger("lobby.realtime")

STREAM_PATHS = frozenset({"/api/events"})


def matcher_wanted() -> bool:
    """MATCHER_TASK: "1" on, "0" off, "auto" on unless REDIS_URL (scale mode, where
    `manage.py run_matcher` runs the passes)."""
    value = str(settings.MATCHER_TASK).lower()
    if value == "auto":
        return not settings.REDIS_URL
    return value in ("1", "true", "yes", "on")


class LobbyApplication:
    def __init__(self, django: ASGIHandler):
        self.django = django

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http" and scope.get("path") in STREAM_PATHS:
            await self.django.handle(scope, receive, send)
        else:
            await self.django(scope, receive, send)

    async def lifespan(self, receive: Any, send: Any) -> None:
        from lobby.replays import verifier
        from lobby.shared.bus import bus

        from . import matcher

        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    if matcher_wanted():
                        await matcher.start()
                        log.info("background matcher started")
                    if verifier.wanted():   # results re-derived from replays (lobby.replays)
                        await verifier.start()
                except Exception as exc:  # noqa: BLE001 - the server reports it and stops
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await matcher.stop()
                await verifier.stop()
                await bus().aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return
