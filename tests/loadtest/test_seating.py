"""loadtest.seating's wait for a seat against a small fake lobby (aiohttp): the event
stream as the browser follows it, and the GET /api/queue polls where the lobby has none."""

import asyncio
import json
import random

import pytest
from aiohttp import web

from loadtest import seating
from loadtest.seating import Seating
from loadtest.stats import Group

SEAT = {"status": "matched", "node_url": "http://127.0.0.1:9", "token": "t0k"}


def frame(event: str, data: dict, event_id: str) -> bytes:
    return f"id: {event_id}\nevent: {event}\ndata: {json.dumps(data)}\n\n".encode()


async def start(app: web.Application) -> tuple[web.AppRunner, str]:
    runner = web.AppRunner(app, handler_cancellation=True)  # a left stream ends its handler
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    return runner, f"http://127.0.0.1:{port}"


def bot(url: str, stop: asyncio.Event, wait: str = "auto") -> Seating:
    s = Seating(url, Group(), stop, random.Random(1), mode=None, poll_interval=0.05,
                queue_timeout=10, request_timeout=5, wait=wait)
    s.open()
    return s


async def test_stream_state_then_matched_is_the_seat() -> None:
    hits: dict[str, int] = {"events": 0, "queue": 0}
    sent = asyncio.Event()

    async def events(request: web.Request) -> web.StreamResponse:
        hits["events"] += 1
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(b"retry: 2000\n\n")
        await resp.write(frame("state", {"status": "waiting", "mode": "arena"}, "1"))
        await resp.write(frame("queue", {"mode": "arena", "position": 1}, "2"))
        await resp.write(b": keep-alive\n\n")
        await resp.write(frame("matched", {k: v for k, v in SEAT.items() if k != "status"}, "3"))
        sent.set()
        await asyncio.sleep(30)  # an endless stream: the bot leaves by itself
        return resp

    async def queue(request: web.Request) -> web.Response:
        hits["queue"] += 1
        return web.json_response({"status": "waiting"})

    app = web.Application()
    app.router.add_get("/api/events", events)
    app.router.add_route("*", "/api/queue", queue)
    runner, url = await start(app)
    s = bot(url, asyncio.Event())
    try:
        seat = await asyncio.wait_for(s.wait_for_seat(), 10)
    finally:
        await s.close()
        await runner.cleanup()
    assert sent.is_set()
    assert seat is not None and seat[:2] == (SEAT["node_url"], SEAT["token"])
    assert hits == {"events": 1, "queue": 0}  # no poll, no cancel
    assert s.g.counters["lobby_requests"] == 1 and s.g.hist["queue_wait"].count == 1


async def test_no_stream_polls_and_remembers_the_lobby(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(seating, "_NO_STREAM", set())
    hits: dict[str, int] = {"events": 0, "queue": 0}

    async def events(request: web.Request) -> web.Response:
        hits["events"] += 1
        return web.json_response({"error": "event streams need the ASGI server"}, status=501)

    async def queue(request: web.Request) -> web.Response:
        hits["queue"] += 1
        return web.json_response(SEAT if hits["queue"] >= 2 else {"status": "waiting"})

    app = web.Application()
    app.router.add_get("/api/events", events)
    app.router.add_get("/api/queue", queue)
    runner, url = await start(app)
    first, second = bot(url, asyncio.Event()), bot(url, asyncio.Event())
    try:
        seat = await asyncio.wait_for(first.wait_for_seat(), 10)
        hits["queue"] = 0
        again = await asyncio.wait_for(second.wait_for_seat(), 10)
    finally:
        await first.close()
        await second.close()
        await runner.cleanup()
    assert seat is not None and seat[:2] == (SEAT["node_url"], SEAT["token"])
    assert again is not None and again[:2] == seat[:2]
    assert hits == {"events": 1, "queue": 2}  # the second bot polled at once


async def test_stream_ticket_gone_is_an_error() -> None:
    async def events(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)
        await resp.write(frame("state", {"status": "none"}, "1"))
        await asyncio.sleep(30)
        return resp

    app = web.Application()
    app.router.add_get("/api/events", events)
    runner, url = await start(app)
    s = bot(url, asyncio.Event(), wait="events")
    try:
        seat = await asyncio.wait_for(s.wait_for_seat(), 10)
    finally:
        await s.close()
        await runner.cleanup()
    assert seat is None and s.g.errors["lobby ticket none"] == 1


def test_unknown_wait_is_refused() -> None:
    with pytest.raises(ValueError):
        Seating("http://127.0.0.1:9", Group(), asyncio.Event(), random.Random(1), mode=None,
                poll_interval=1, queue_timeout=1, request_timeout=1, wait="sometimes")
