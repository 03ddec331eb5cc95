"""A bot's lobby side (docs/lobby.md): guest sign-in, the queue, the wait for a seat.

One `Seating` per bot, with its own cookie jar (the guest's session and CSRF cookie);
every request is counted and timed in the bot's `stats.Group`.
"""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp

from loadtest.stats import Group

REQUEUE_RETRY = 1.0        # seconds between POST /api/queue attempts answered 409


class LobbyError(Exception):
    def __init__(self, cause: str):
        super().__init__(cause)
        self.cause = cause


async def sleep_or_stop(stop: asyncio.Event, seconds: float) -> bool:
    """Sleep `seconds` unless `stop` is set first; True if stopped."""
    try:
        await asyncio.wait_for(stop.wait(), seconds)
    except TimeoutError:
        return False
    return True


class Seating:
    """The lobby HTTP API as one bot uses it; `open()` before the first request."""

    def __init__(self, lobby_url: str, g: Group, stop: asyncio.Event, rng: random.Random, *,
                 mode: str | None, poll_interval: float, queue_timeout: float,
                 request_timeout: float):
        self.lobby_url = lobby_url
        self.g = g
        self.stop = stop
        self.rng = rng
        self.mode = mode
        self.poll_interval = poll_interval
        self.queue_timeout = queue_timeout
        self.request_timeout = request_timeout
        self.http: aiohttp.ClientSession | None = None
        self.user_id: int | None = None

    def open(self) -> None:
        self.http = aiohttp.ClientSession(
            cookie_jar=aiohttp.CookieJar(unsafe=True),  # unsafe: keep cookies of 127.0.0.1
            # idle keep-alive connections are dropped after 1 s, before the lobby server
            # closes them (gunicorn: 2 s), so a request never lands on a closing connection
            connector=aiohttp.TCPConnector(limit=2, keepalive_timeout=1.0))

    async def close(self) -> None:
        if self.http is not None:
            await self.http.close()

    def error(self, cause: str) -> None:
        self.g.errors[cause] += 1

    async def request(self, method: str, path: str, payload: dict | None = None,
                      ok: tuple[int, ...] = (200,)) -> tuple[int, dict]:
        assert self.http is not None
        headers = {}
        if method != "GET":
            cookie = self.http.cookie_jar.filter_cookies(self.lobby_url).get("csrftoken")
            if cookie is not None:
                headers["X-CSRFToken"] = cookie.value
        t0 = time.monotonic()
        try:
            async with self.http.request(method, self.lobby_url + path, json=payload, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=self.request_timeout)) as r:
                status = r.status
                try:
                    data = await r.json(content_type=None)
                except ValueError:
                    data = {}
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise LobbyError(f"lobby {method} {path}: {type(exc).__name__}") from None
        finally:
            self.g.hist["lobby_request"].record(time.monotonic() - t0)
            self.g.counters["lobby_requests"] += 1
        if status not in ok:
            raise LobbyError(f"lobby {method} {path}: HTTP {status}")
        return status, data if isinstance(data, dict) else {}

    async def sign_in(self) -> None:
        await self.request("GET", "/api/csrf")
        _, data = await self.request("POST", "/api/guest")
        self.user_id = data.get("user_id")

    async def join(self) -> bool:
        """POST /api/queue until it takes the ticket; False if stopped or given up."""
        t_start = time.monotonic()
        payload = {"mode": self.mode} if self.mode else {}
        while True:
            status, _ = await self.request("POST", "/api/queue", payload, ok=(200, 409))
            if status == 200:
                return True
            # 409: the lobby still counts us in the match that just ended (until the node's
            # result arrives) or a ticket is still waiting. Retry; too long is an error.
            self.g.counters["queue_409"] += 1
            if time.monotonic() - t_start > self.queue_timeout:
                self.error(f"lobby POST /api/queue: HTTP 409 for {self.queue_timeout:g} s")
                await self.cancel()
                return False
            if await sleep_or_stop(self.stop, REQUEUE_RETRY * self.rng.uniform(0.8, 1.2)):
                return False

    async def wait_for_seat(self) -> tuple[str, str, float] | None:
        """After `join`: (node_url, token, t_queue) once matched, or None if stopped."""
        t_queue = time.monotonic()
        while not self.stop.is_set():
            if time.monotonic() - t_queue > self.queue_timeout:
                self.error("queue timeout")
                await self.cancel()
                return None
            if await sleep_or_stop(self.stop, self.poll_interval * self.rng.uniform(0.8, 1.2)):
                break
            _, data = await self.request("GET", "/api/queue")
            status_ = data.get("status")
            if status_ == "matched":
                node_url, token = data.get("node_url"), data.get("token")
                if not isinstance(node_url, str) or not isinstance(token, str):
                    raise LobbyError("lobby GET /api/queue: matched without node_url/token")
                self.g.hist["queue_wait"].record(time.monotonic() - t_queue)
                return node_url, token, t_queue
            if status_ != "waiting":
                self.error(f"lobby ticket {status_}")
                return None
        await self.cancel()
        return None

    async def cancel(self) -> None:
        await self.request("DELETE", "/api/queue", ok=(200, 404, 409))
