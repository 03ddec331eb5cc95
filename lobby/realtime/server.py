"""The lobby on uvicorn as a child process, and an event-stream reader: the live-lobby
tests and `python -m lobby.sse_bench` use them (the multi-worker gunicorn launcher and the
browser-like HTTP client are `lobby.live`)."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from lobby.live import LobbyServer


def uvicorn_argv(bind: list[str], workers: int = 1) -> list[str]:
    """The lobby's uvicorn command line (run.py, cluster.py, the tests): the ASGI app with
    its lifespan, no access log, a short graceful shutdown (event streams never end by
    themselves), a large backlog for many streams."""
    return [sys.executable, "-m", "uvicorn", "lobby.asgi:application", *bind,
            "--workers", str(workers), "--lifespan", "on", "--no-access-log",
            "--timeout-graceful-shutdown", "3", "--backlog", "4096", "--log-level", "warning"]


class UvicornServer(LobbyServer):
    """`uvicorn lobby.asgi:application` (`--fd N`)."""

    server = "uvicorn"
    backlog = 4096
    stop_timeout = 15.0

    def __init__(self, *, workers: int = 1, env: dict[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path | None = None) -> None:
        super().__init__(workers=workers, env=env, log_path=log_path, cwd=cwd)

    def argv(self, fd: int) -> list[str]:
        return uvicorn_argv(["--fd", str(fd)], self.workers)


@dataclass
class Message:
    event: str
    id: str | None
    data: dict


class EventStream:
    """An open `GET /api/events` (as the browser's EventSource reads it)."""

    def __init__(self, http: aiohttp.ClientSession, resp: aiohttp.ClientResponse):
        self.http, self.resp = http, resp
        self.last_id: str | None = None
        self.comments = 0

    @classmethod
    async def open(cls, url: str, cookies: dict[str, str], *, path: str = "/api/events",
                   last_id: str | None = None, http: aiohttp.ClientSession | None = None
                   ) -> EventStream:
        own = http is None
        if own:
            http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        headers = {"Accept": "text/event-stream",
                   "Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        if last_id:
            headers["Last-Event-ID"] = last_id
        resp = await http.get(url + path, headers=headers)
        stream = cls(http if own else None, resp)
        if resp.status != 200:
            body = await resp.text()
            await stream.close()
            raise RuntimeError(f"event stream: {resp.status} {body}")
        return stream

    async def next(self, timeout: float = 10.0) -> Message:
        """The next event (comments counted and skipped); TimeoutError after `timeout`."""
        return await asyncio.wait_for(self._next(), timeout)

    async def _next(self) -> Message:
        event, event_id, data = "message", None, []
        while True:
            raw = await self.resp.content.readline()
            if not raw:
                raise ConnectionError("event stream closed")
            line = raw.decode().rstrip("\r\n")
            if not line:
                if data:
                    if event_id is not None:
                        self.last_id = event_id
                    return Message(event, event_id, json.loads("\n".join(data)))
                continue
            if line.startswith(":"):
                self.comments += 1
                continue
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "id":
                event_id = value
            elif field == "data":
                data.append(value)

    async def until(self, event: str, timeout: float = 10.0, **fields: object) -> Message:
        """Skip events until one of kind `event` whose data holds `fields`."""
        deadline = time.monotonic() + timeout
        while True:
            msg = await self.next(max(0.01, deadline - time.monotonic()))
            if msg.event == event and all(msg.data.get(k) == v for k, v in fields.items()):
                return msg

    async def close(self) -> None:
        self.resp.close()
        if self.http is not None:
            await self.http.close()
