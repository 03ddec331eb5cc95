"""A background task of the ASGI application (its lifespan starts and stops it: lobby.
realtime.asgi) that sleeps until woken or until its next pass is due.

`wake()` may be called from any thread (a request's commit, a management command's): the
task runs its passes in a worker thread of the default executor, so while it sleeps it
holds neither a thread nor a database connection. One per kind per process, in a `Slot`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Generic, TypeVar


class WakeableTask:
    name = "background"

    def __init__(self) -> None:
        self.loop: asyncio.AbstractEventLoop | None = None
        self.wakeup: asyncio.Event | None = None
        self.task: asyncio.Task | None = None

    def start(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.wakeup = asyncio.Event()
        self.task = self.loop.create_task(self.run(), name=self.name)

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

    async def sleep(self, timeout: float) -> None:
        """Until woken or `timeout` seconds; a wake-up during the pass before counts."""
        assert self.wakeup is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout)

    async def in_thread(self, fn: Callable):
        """`fn()` in a worker thread; a wake-up from now on wakes the next sleep."""
        assert self.loop is not None and self.wakeup is not None
        self.wakeup.clear()
        return await self.loop.run_in_executor(None, fn)

    async def run(self) -> None:
        raise NotImplementedError


T = TypeVar("T", bound=WakeableTask)


class Slot(Generic[T]):
    """The one task of a kind in this process: start, stop, wake it, ask if it runs."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.current: T | None = None

    def running(self) -> bool:
        return (self.current is not None and self.current.task is not None
                and not self.current.task.done())

    def wake(self) -> None:
        if self.current is not None:
            self.current.wake()

    async def start(self) -> T:
        self.current = self.factory()
        self.current.start()
        return self.current

    async def stop(self) -> None:
        if self.current is not None:
            await self.current.stop()
        self.current = None
