"""The matcher as a background task of the ASGI application (its lifespan starts and
stops it: `lobby.asgi`), for the embedded lobby: no request runs a pass.

It sleeps until woken (a ticket joined, a result freed seats: `wake()`, from any thread)
or until the next pass is due: the moment the oldest waiting ticket reaches
`MATCH_MAX_WAIT` (a match surely forms then), `WINDOW_TICK` while tickets wait (rating
windows widen with time), `IDLE_TICK` with nobody waiting (node and match expiry). Passes
run in a worker thread of the default executor and close their database connection: the
task holds neither a thread nor a connection while it sleeps. In scale mode `manage.py
run_matcher` does the same under the pass lock (`lobby.shared.gate`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.db import close_old_connections, connection

from .events import Notifier

log = logging.getLogger("lobby.realtime")

MIN_GAP = 0.05     # seconds between two passes (a burst of joins is one pass)
WINDOW_TICK = 1.0  # seconds between passes while tickets wait
IDLE_TICK = 5.0    # seconds between passes with nobody waiting


class BackgroundMatcher:
    def __init__(self) -> None:
        self.notifier = Notifier()
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.passes = 0

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.task = self.loop.create_task(self.run(), name="matcher")

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.task
        self.task = None

    def wake(self) -> None:
        """From any thread."""
        if self.loop is not None and self.wakeup is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.wakeup.set)

    async def run(self) -> None:
        last = 0.0
        while True:
            gap = MIN_GAP - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            last = time.monotonic()
            self.wakeup.clear()
            try:
                due = await self.loop.run_in_executor(None, self.one_pass)
            except Exception:  # noqa: BLE001 - database or Redis down: try again soon
                log.exception("matcher pass failed")
                due = WINDOW_TICK
            self.passes += 1
            timeout = IDLE_TICK if due is None else min(max(due, MIN_GAP), WINDOW_TICK)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), timeout)

    def one_pass(self) -> float | None:
        from lobby.matchmaking.services import run_pass

        close_old_connections()
        try:
            now = time.time()
            figures = run_pass(now, force=True)
            return self.notifier.after_pass(now, figures)
        finally:
            connection.close()


_matcher: BackgroundMatcher | None = None


def running() -> bool:
    """A background matcher runs in this process (request paths then run no pass)."""
    return _matcher is not None and _matcher.task is not None and not _matcher.task.done()


def wake() -> None:
    if _matcher is not None:
        _matcher.wake()


async def start() -> BackgroundMatcher:
    global _matcher
    _matcher = BackgroundMatcher()
    _matcher.start()
    return _matcher


async def stop() -> None:
    global _matcher
    if _matcher is not None:
        await _matcher.stop()
    _matcher = None
