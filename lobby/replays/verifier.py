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

import logging
import time

from django.conf import settings
from django.db import close_old_connections, connection

from lobby.shared.background import Slot, WakeableTask

log = logging.getLogger("lobby.replays")

PURGE_EVERY = 3600.0   # seconds between two retention passes


def wanted() -> bool:
    """REPLAY_VERIFY_TASK: "1" on, "0" off, "auto" on unless REDIS_URL (scale mode)."""
    value = str(settings.REPLAY_VERIFY_TASK).lower()
    if value == "auto":
        return not settings.REDIS_URL
    return value in ("1", "true", "yes", "on")


class BackgroundVerifier(WakeableTask):
    name = "replay-verifier"

    def __init__(self) -> None:
        super().__init__()
        self.verified = 0
        self._purged_at = 0.0

    async def run(self) -> None:
        while True:
            try:
                self.verified += await self.in_thread(self.one_pass)
            except Exception:  # noqa: BLE001 - the database is down: try again later
                log.exception("replay verification pass failed")
            await self.sleep(settings.REPLAY_VERIFY_INTERVAL)

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


_slot: Slot[BackgroundVerifier] = Slot(BackgroundVerifier)
running = _slot.running
wake = _slot.wake
start = _slot.start
stop = _slot.stop
