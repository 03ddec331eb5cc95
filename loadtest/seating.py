"""A bot's lobby side (docs/lobby.md): guest sign-in, the queue, the wait for a seat.

One `Seating` per bot, with its own cookie jar (the guest's session and CSRF cookie);
every request is counted and timed in the bot's `stats.Group`.

The wait for a seat is the browser's (static/src/client.js): the lobby's event stream
(`GET /api/events`, told `matched` the moment the match forms), and `GET /api/queue`
polls every `poll_interval` where the lobby has no stream (WSGI answers 501, a full
process 503) or the stream keeps failing (`wait` "auto", the default); "events" or "poll"
forces one (the tool's `--lobby-wait`).
"""

from __future__ import annotations

import asyncio
import json
import random
import time

import aiohttp

from loadtest.stats import Group

REQUEUE_RETRY = 1.0        # seconds before the first retry of a POST /api/queue answered 409,
REQUEUE_MAX = 8.0          # doubling up to this (a seat the node refused stays counted until
                           # the node's result: each retry meanwhile is a lobby request)
WAITS = ("auto", "events", "poll")
STREAM_ERRORS = 3          # stream failures (each reconnected) before polling, as the browser
STREAM_RETRY = 2.0         # seconds before reconnecting a stream (the lobby's `retry:`)
# lobbies that answered the stream with "not here" (501/503), per process: polled at once
_NO_STREAM: set[str] = set()


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


def _seat(data: dict, what: str) -> tuple[str, str]:
    """(node_url, token) of a "matched" answer (the queue API's or a stream event's)."""
    node_url, token = data.get("node_url"), data.get("token")
    if not isinstance(node_url, str) or not isinstance(token, str):
        raise LobbyError(f"{what} without node_url/token")
    return node_url, token


class Seating:
    """The lobby HTTP API as one bot uses it; `open()` before the first request."""

    def __init__(self, lobby_url: str, g: Group, stop: asyncio.Event, rng: random.Random, *,
                 mode: str | None, poll_interval: float, queue_timeout: float,
                 request_timeout: float, wait: str = "auto"):
        if wait not in WAITS:
            raise ValueError(f"wait must be one of {', '.join(WAITS)}, not {wait!r}")
        self.wait = wait
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
            self._count_request(t0)
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
        delay = REQUEUE_RETRY
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
            if await sleep_or_stop(self.stop, delay * self.rng.uniform(0.8, 1.2)):
                return False
            delay = min(delay * 2, REQUEUE_MAX)

    async def wait_for_seat(self) -> tuple[str, str, float] | None:
        """After `join`: (node_url, token, t_queue) once matched, or None if stopped."""
        t_queue = time.monotonic()
        if self.wait == "events" or (self.wait == "auto" and self.lobby_url not in _NO_STREAM):
            follower = asyncio.ensure_future(self.follow_events())
            stopper = asyncio.ensure_future(self.stop.wait())
            try:
                await asyncio.wait((follower, stopper), return_when=asyncio.FIRST_COMPLETED,
                                   timeout=self.queue_timeout)
            finally:
                stopper.cancel()
                if not follower.done():
                    follower.cancel()
                    await asyncio.gather(follower, return_exceptions=True)
            if follower.done() and not follower.cancelled():
                outcome = follower.result()  # raises the follower's LobbyError
                if outcome != "poll":
                    if outcome is None:
                        return None  # the ticket is gone (counted)
                    self.g.hist["queue_wait"].record(time.monotonic() - t_queue)
                    return outcome[0], outcome[1], t_queue
            else:  # stopped, or no seat within queue_timeout
                if not self.stop.is_set():
                    self.error("queue timeout")
                await self.cancel()
                return None
        return await self.poll_for_seat(t_queue)

    async def follow_events(self) -> tuple[str, str] | str | None:
        """The event stream until `matched` (or a `state` that is): (node_url, token); None
        if the ticket is gone (counted as an error); "poll" when the lobby has no stream for
        this bot (501, 503) or it failed STREAM_ERRORS times."""
        assert self.http is not None
        last_id: str | None = None
        failures = 0
        while True:
            headers = {"Accept": "text/event-stream"}
            if last_id:
                headers["Last-Event-ID"] = last_id
            t0 = time.monotonic()
            answered = False
            try:
                async with self.http.get(self.lobby_url + "/api/events", headers=headers,
                                         timeout=aiohttp.ClientTimeout(
                                             total=None, sock_connect=self.request_timeout,
                                             sock_read=None)) as r:
                    if r.status in (501, 503):  # no stream here (WSGI) or this process is full
                        self._count_request(t0)
                        if r.status == 501:
                            _NO_STREAM.add(self.lobby_url)
                        return "poll"
                    if r.status != 200:
                        self._count_request(t0)
                        raise LobbyError(f"lobby GET /api/events: HTTP {r.status}")
                    event, data, event_id = "message", [], None
                    async for raw in r.content:
                        line = raw.decode().rstrip("\r\n")
                        if line:
                            name, _, value = line.partition(":")
                            value = value.removeprefix(" ")
                            if name == "event":
                                event = value
                            elif name == "data":
                                data.append(value)
                            elif name == "id":
                                event_id = value
                            continue
                        if data:  # a blank line ends an event
                            if event_id is not None:
                                last_id = event_id
                            if not answered:  # the stream's answer: its first event
                                answered = True
                                self._count_request(t0)
                            seat = self._seat_of(event, json.loads("\n".join(data)))
                            if seat != "waiting":
                                return seat
                        event, data, event_id = "message", [], None
            except (aiohttp.ClientError, TimeoutError, ValueError):
                if not answered:
                    self._count_request(t0)
            failures += 1
            if failures >= STREAM_ERRORS:
                self.g.counters["stream_fallbacks"] += 1
                return "poll"
            self.g.counters["stream_reconnects"] += 1
            await asyncio.sleep(STREAM_RETRY * self.rng.uniform(0.8, 1.2))

    def _seat_of(self, event: str, data: dict) -> tuple[str, str] | str | None:
        """A stream event: the seat (matched), None (ticket gone: counted) or "waiting"."""
        if event not in ("state", "matched"):
            return "waiting"  # queue, live: nothing to do
        status_ = data.get("status", "matched" if event == "matched" else None)
        if status_ == "matched":
            return _seat(data, f"lobby GET /api/events: {event}")
        if status_ == "waiting":
            return "waiting"
        self.error(f"lobby ticket {status_}")
        return None

    def _count_request(self, t0: float) -> None:
        self.g.hist["lobby_request"].record(time.monotonic() - t0)
        self.g.counters["lobby_requests"] += 1

    async def poll_for_seat(self, t_queue: float) -> tuple[str, str, float] | None:
        """GET /api/queue every `poll_interval` until matched; None if stopped."""
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
                node_url, token = _seat(data, "lobby GET /api/queue: matched")
                self.g.hist["queue_wait"].record(time.monotonic() - t_queue)
                return node_url, token, t_queue
            if status_ != "waiting":
                self.error(f"lobby ticket {status_}")
                return None
        await self.cancel()
        return None

    async def cancel(self) -> None:
        await self.request("DELETE", "/api/queue", ok=(200, 404, 409))
