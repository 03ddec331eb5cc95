"""The verifier as a background task of the ASGI application (its lifespan starts and
stops it: `lobby.realtime.asgi`), for the embedded lobby: results are re-derived from their
replays outside any request, by the lobby itself.

It sleeps until woken (a replay or a result came in: `wake()`, from any thread) or for
REPLAY_VERIFY_INTERVAL seconds, then runs passes (`services.verify_pending`) in a worker
thread of the default executor until nothing is pending, closing its database connection
after each. Once an hour it also removes the files past REPLAY_RETENTION_DAYS. In scale
mode (REDIS_URL) the task is off by default and `manage.py verify_replays --loop` does the
same (docs/lobby.md, "Replays").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time

from django.conf import settings
from django.db import close_old_connections, connection

log = logging.getLogger("lobby.replays")

PURGE_EVERY = 3600.0   # seconds between two retention passes


def wanted() -> bool:
    """REPLAY_VERIFY_TASK: "1" on, "0" off, "auto" on unless REDIS_URL (scale mode)."""
    value = str(settings.REPLAY_VERIFY_TASK).lower()
    if value == "auto":
        return not settings.REDIS_URL
    return value in ("1", "true", "yes", "on")


class BackgroundVerifier:
    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None
        self.verified = 0
        self._purged_at = 0.0

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.task = self.loop.create_task(self.run(), name="replay-verifier")

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
        while True:
            self.wakeup.clear()
            try:
                self.verified += await self.loop.run_in_executor(None, self.one_pass)
            except Exception:  # noqa: BLE001 - the database is down: try again later
                log.exception("replay verification pass failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.wakeup.wait(), settings.REPLAY_VERIFY_INTERVAL)

    def one_pass(self) -> int:
        from .services import purge_expired, verify_pending

        close_old_connections()
        try:
            total = 0
            while True:
                n = verify_pending()
                total += n
                if n == 0:
                    break
            if time.monotonic() - self._purged_at >= PURGE_EVERY:
                self._purged_at = time.monotonic()
                purged = purge_expired()
                if purged:
                    log.info("%d replays past REPLAY_RETENTION_DAYS removed", purged)
            return total
        finally:
            connection.close()


_verifier: BackgroundVerifier | None = None


def running() -> bool:
    return _verifier is not None and _verifier.task is not None and not _verifier.task.done()


def wake() -> None:
    if _verifier is not None:
        _verifier.wake()


async def start() -> BackgroundVerifier:
    global _verifier
    _verifier = BackgroundVerifier()
    _verifier.start()
    return _verifier


async def stop() -> None:
    global _verifier
    if _verifier is not None:
        await _verifier.stop()
    _verifier = None
