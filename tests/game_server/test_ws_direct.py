"""The raw websocket's direct read (game_server/websocket.py, `DirectQueue`): data messages
reach the handler from the transport's `data_received`, with no task per message. It uses
aiohttp internals: these tests fail loudly when an aiohttp upgrade breaks them (then
re-check `DirectQueue` and `GameWebSocket._post_start` against the new aiohttp, and the
pin in pyproject.toml)."""

from __future__ import annotations

import asyncio

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

from game_server import websocket
from game_server.connection import Connection


class Recorder:
    """A ConnectionHandler that records each message and whether a task delivered it."""

    def __init__(self) -> None:
        self.messages: list[tuple[bytes | str, bool]] = []
        self.conns: list[Connection] = []
        self.got = asyncio.Event()
        self.expect = 0

    def connection_made(self, conn: Connection) -> None:
        self.conns.append(conn)

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        self.messages.append((data, asyncio.current_task() is not None))
        if len(self.messages) >= self.expect:
            self.got.set()

    def connection_lost(self, conn: Connection) -> None:
        pass


def test_the_pinned_aiohttp_is_the_tested_one():
    assert aiohttp.__version__.rsplit(".", 1)[0] == websocket.AIOHTTP_TESTED, (
        f"aiohttp {aiohttp.__version__}: DirectQueue was written against "
        f"{websocket.AIOHTTP_TESTED}; re-check it, then update AIOHTTP_TESTED and the pin")
    assert websocket.DIRECT_READ
    # what _post_start swaps (and puts back): aiohttp builds its queue from this name
    assert aiohttp.web_ws.WebSocketDataQueue is not websocket.DirectQueue
    assert issubclass(websocket.DirectQueue, aiohttp.web_ws.WebSocketDataQueue)


async def test_data_messages_skip_the_task_and_keep_their_order():
    rec = Recorder()
    app = web.Application()
    app.router.add_get("/play/websocket", websocket.websocket_route(
        rec, max_send_queue=8, max_message_bytes=512))
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http, \
                http.ws_connect(server.make_url("/play/websocket"), autoping=False) as ws:
            # the first message may still find the handler being set up; then every one
            # comes straight from data_received, pings between them included
            rec.expect = 1
            await ws.send_bytes(b"first")
            await asyncio.wait_for(rec.got.wait(), 30)
            rec.got.clear()
            rec.expect = 1 + 2 * 50
            for i in range(50):
                await ws.send_bytes(b"b%d" % i)
                await ws.send_str(f"t{i}")
            await asyncio.wait_for(rec.got.wait(), 30)
            # a control frame goes through the read loop; then data is direct again
            await ws.ping(b"p")
            msg = await asyncio.wait_for(ws.receive(), 30)
            assert msg.type is aiohttp.WSMsgType.PONG
            rec.got.clear()
            rec.expect += 10
            for i in range(10):
                await ws.send_bytes(b"after%d" % i)
            await asyncio.wait_for(rec.got.wait(), 30)
    finally:
        await server.close()
    later = rec.messages[1:]
    assert [m for m, _ in later] == ([x for i in range(50) for x in (b"b%d" % i, f"t{i}")]
                                     + [b"after%d" % i for i in range(10)])
    assert not any(in_task for _, in_task in later), "a data message went through a task"
    ws_conn = rec.conns[0]
    assert isinstance(ws_conn.ws._reader, websocket.DirectQueue)
