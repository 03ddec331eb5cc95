"""The lobby's ASGI application: Django's, plus the lifespan (the background matcher,
the bus's connections), with its HTTP requests served outside Django's per-request thread
context.

Django runs each request inside an asgiref `ThreadSensitiveContext`: the first synchronous
step of the request (a sync middleware, the session load) creates a one-thread executor
that lives until the response ends. For an event stream that lasts minutes that is an
idle thread per browser, exactly what an event loop is for avoiding. And every view here is
synchronous, for which Django's ASGI path costs a thread hop per synchronous middleware
boundary and per signal (`request_started`, the response's close).

So `SyncRequests` serves every HTTP request as WSGI does: the middleware chain loaded in
synchronous mode and the whole request (signals, middleware, view, close) in one call on
a pool of `ASGI_THREADS` threads (`request_threads()`), each with its own persistent
database connection. A streaming response (the event stream's async generator, a static
file) is then sent from the event loop, and cancelled when the client disconnects; the
event stream's own reads run on the same pool (`lobby.realtime.stream.pooled`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import functools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from django.conf import settings
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers import base
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.http import HttpResponseBase
from django.urls import set_script_prefix

log = logging.getLogger("lobby.realtime")

_threads: ThreadPoolExecutor | None = None
_threads_lock = threading.Lock()


def request_threads() -> ThreadPoolExecutor:
    """This process's pool of `ASGI_THREADS` threads for synchronous Django work (views,
    the event stream's reads): a fixed set of threads, so a fixed set of persistent
    database connections, whose age and health are checked around each use as
    `request_started` and `request_finished` do."""
    global _threads
    if _threads is None:
        with _threads_lock:
            if _threads is None:
                _threads = ThreadPoolExecutor(settings.ASGI_THREADS,
                                              thread_name_prefix="lobby-request")
    return _threads


async def in_request_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn(*args)` on `request_threads()`, in a copy of the caller's context variables
    (what `fn` sets there stays in the copy). A plain `run_in_executor`: asgiref's
    `sync_to_async` adds, per call, a wrapper object, its thread-sensitivity bookkeeping
    and the restoring of the context into the caller's, which nothing here needs."""
    call = functools.partial(contextvars.copy_context().run, fn, *args)
    return await asyncio.get_running_loop().run_in_executor(request_threads(), call)


def matcher_wanted() -> bool:
    """MATCHER_TASK: "1" on, "0" off, "auto" on unless REDIS_URL (scale mode, where
    `manage.py run_matcher` runs the passes)."""
    value = str(settings.MATCHER_TASK).lower()
    if value == "auto":
        return not settings.REDIS_URL
    return value in ("1", "true", "yes", "on")


class SyncRequests(ASGIHandler):
    """Django's ASGI handler for synchronous views: one pooled thread per request (module
    docstring). What it gives up against Django's: cancelling a view (not a streaming
    response) when the client disconnects, which WSGI has no such thing as either."""

    def __init__(self) -> None:
        base.BaseHandler.__init__(self)
        self.load_middleware(is_async=False)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        response = await in_request_thread(self.respond, scope, body_file)
        try:
            if response.streaming:  # until its end or the client's disconnect
                await self.send_streaming(response, receive, send)
            else:
                await self.send_response(response, send)
        finally:
            if response.streaming:  # closed once its body is sent
                await in_request_thread(response.close)
            body_file.close()

    async def send_streaming(self, response: HttpResponseBase, receive: Any, send: Any) -> None:
        sender = asyncio.ensure_future(self.send_response(response, send))
        listener = asyncio.ensure_future(receive())  # the next message: http.disconnect
        try:
            await asyncio.wait((sender, listener), return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (listener, sender):
                if not task.done():
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
        if sender.done() and not sender.cancelled():
            sender.result()

    def respond(self, scope: dict, body_file: Any) -> HttpResponseBase:
        """In a pool thread: the request as `WSGIHandler.__call__` serves it."""
        set_script_prefix(get_script_prefix(scope))
        signals.request_started.send(sender=self.__class__, scope=scope)
        request, response = self.create_request(scope, body_file)
        if request is not None:
            response = self.get_response(request)
        response._handler_class = self.__class__
        if not response.streaming:
            response.content  # noqa: B018 - rendered here, not on the event loop
            response.close()  # request_finished: the database connection's age is checked
        return response


class LobbyApplication:
    def __init__(self, django: ASGIHandler):
        self.django = django
        self.requests = SyncRequests()

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self.lifespan(receive, send)
        elif scope["type"] == "http":
            await self.requests(scope, receive, send)
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
