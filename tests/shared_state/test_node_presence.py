"""A real node (aiohttp, raw websocket, the Arena) with `redis_url`: the players it seats
appear in Redis presence, with their connection state, and vanish when it stops."""

from __future__ import annotations

import asyncio
import time

import aiohttp
from aiohttp.test_utils import TestServer

from engine import codec
from engine.auth import issue_seat_token
from game_server.app import PRESENCE_KEY, build_app
from game_server.settings import DEV_SEAT_SECRET, NodeSettings
from game_server.shared_state import RedisPresence, connect

from .test_node_state import until_subscribed


async def _now(value):
    """A plain value as the awaitable `wait_for` polls."""
    return value


async def wait_for(check, timeout: float = 3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def test_seated_players_published_and_cleared_on_stop(redis_url, prefix, tmp_path):
    settings = NodeSettings(port=0, node_id="pn-1", redis_url=redis_url, redis_prefix=prefix,
                            presence_interval=0.1, reconnect_window=5.0,
                            outbox_path=str(tmp_path / "outbox.sqlite3"),
                            shutdown_flush_timeout=0.5)
    app = build_app(settings)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    r = connect(redis_url)
    board = RedisPresence(r, prefix)
    events: list[dict] = []

    async def listen() -> None:
        async for event in board.subscribe():
            events.append(event)

    listener = asyncio.create_task(listen())
    try:
        await until_subscribed(board, events)
        token = issue_seat_token(DEV_SEAT_SECRET, user_id=42, name="Ann", match_id="pm1",
                                 node_id="pn-1", now=time.time(), ttl=30, mode="sprint")
        async with aiohttp.ClientSession() as http:
            ws = await http.ws_connect(server.make_url("/play/websocket"))
            await ws.send_bytes(codec.encode(codec.Join(token)))
            first = codec.decode_any((await ws.receive(3)).data, max_size=1 << 22)
            assert isinstance(first, codec.Welcome)
            seen = await wait_for(lambda: board.where(42))
            assert seen == {"node_id": "pn-1", "match_id": "pm1", "connected": True}
            await ws.close()
            # In the reconnect window: still seated, no longer connected.
            await wait_for(lambda: _disconnected(board, 42))
        assert app[PRESENCE_KEY].published >= 2
        seated = {"type": "seated", "node_id": "pn-1", "user_id": 42, "match_id": "pm1"}
        await wait_for(lambda: _now(seated in events))  # the event reached the subscriber
    finally:
        await server.close()  # shutdown: the publisher clears this node's presence
        listener.cancel()
    assert await board.where(42) is None
    await board.close()
    await r.aclose()


async def _disconnected(board: RedisPresence, user_id: int) -> bool:
    where = await board.where(user_id)
    return bool(where) and where["connected"] is False
