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
import logging
import time

from django.db import close_old_connections, connection

from lobby.shared.background import Slot, WakeableTask

from .events import Notifier

log = logging.getLogger("lobby.realtime")

MIN_GAP = 0.2      # seconds between two passes (a burst of joins is one pass)
WINDOW_TICK = 1.0  # seconds between passes while tickets wait
IDLE_TICK = 5.0    # seconds between passes with nobody waiting


class BackgroundMatcher(WakeableTask):
    name = "matcher"

    def __init__(self) -> None:
        super().__init__()
        self.notifier = Notifier()
        self.passes = 0

    async def run(self) -> None:
        last = 0.0
        while True:
            gap = MIN_GAP - (time.monotonic() - last)
            if gap > 0:
                await asyncio.sleep(gap)
            last = time.monotonic()
            try:
                due = await self.in_thread(self.one_pass)
            except Exception:  # noqa: BLE001 - database or Redis down: try again soon
                log.exception("matcher pass failed")
                due = WINDOW_TICK
            self.passes += 1
            await self.sleep(IDLE_TICK if due is None else min(max(due, MIN_GAP), WINDOW_TICK))

    def one_pass(self) -> float | None:
        from lobby.matchmaking.services import run_pass

        close_old_connections()
        try:
            now = time.time()
            figures = run_pass(now, force=True)
            return self.notifier.after_pass(now, figures)
        finally:
            connection.close()


_slot: Slot[BackgroundMatcher] = Slot(BackgroundMatcher)
running = _slot.running   # a background matcher runs in this process (requests run no pass)
wake = _slot.wake
start = _slot.start
stop = _slot.stop
