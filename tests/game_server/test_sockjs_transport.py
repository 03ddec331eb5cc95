"""`add_sockjs_routes` as the node uses it: a `ConnectionHandler` behind every transport,
base64 text in, shared pre-rendered frames out, bounded queues, close codes, expiry, and
the package's faults 2 to 5 (fault 1, CORS, is in test_sockjs_protocol.py).

test_sockjs_unpatched.py shows each of these scenarios failing on the plain package.
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from engine import codec
from game_server.connection import Connection, Frame
from game_server.sockjs_transport import (
    SOCKJS_TEXT,
    SOCKJS_WS,
    SockJSConnection,
    add_sockjs_routes,
)

T = 5.0  # seconds: the bound of every single network wait
DELAY = 0.3  # disconnect_delay of the test endpoint


class Recorder:
    """A ConnectionHandler that records what the transport tells it."""

    def __init__(self) -> None:
        self.conns: list[SockJSConnection] = []
        self.messages: list[tuple[Connection, bytes | str]] = []
        self.lost: list[Connection] = []
        self._changed = asyncio.Event()

    def connection_made(self, conn: Connection) -> None:
        assert isinstance(conn, SockJSConnection)
        self.conns.append(conn)
        self._changed.set()

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        self.messages.append((conn, data))
        self._changed.set()

    def connection_lost(self, conn: Connection) -> None:
        assert conn not in self.lost, "connection_lost twice"
        self.lost.append(conn)
        self._changed.set()

    async def until(self, predicate: Callable[[], bool], timeout: float = T) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

    async def conn(self, n: int = 1) -> SockJSConnection:
        await self.until(lambda: len(self.conns) >= n)
        return self.conns[n - 1]


async def poll_until(predicate: Callable[[], object], timeout: float = T) -> None:
    """For state no Recorder event announces: poll it, with a deadline."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.005)


async def raw_websocket_stub(request: web.Request) -> web.Response:
    return web.Response(text="the node's binary websocket")


def make_app(recorder: Recorder, **options) -> web.Application:
    app = web.Application()
    app.router.add_get("/play/websocket", raw_websocket_stub)  # registered first, as the node does
    add_sockjs_routes(app, recorder, **{"disconnect_delay": DELAY, "max_send_queue": 4, **options})
    return app


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
async def client(aiohttp_client, recorder):
    return await aiohttp_client(make_app(recorder))


def url() -> str:
    return f"/play/000/{uuid.uuid4()}"


async def post(client, path: str, body: str = "") -> str:
    async with asyncio.timeout(T):
        r = await client.post(path, data=body)
        return await r.text()


async def ws_open(client, path: str) -> aiohttp.ClientWebSocketResponse:
    async with asyncio.timeout(T):
        ws = await client.ws_connect(path, autoclose=False)
    assert (await ws.receive(timeout=T)).data == "o"
    return ws


def b64(msg: codec.Message) -> str:
    return codec.to_text(codec.encode(msg))


# ---------------------------------------------------------------- the seam


async def test_raw_websocket_path_is_left_to_the_node(client):
    async with asyncio.timeout(T):
        r = await client.get("/play/websocket")
        assert await r.text() == "the node's binary websocket"


async def test_handler_gets_base64_text_on_every_transport(client, recorder):
    ws = await ws_open(client, url() + "/websocket")
    await ws.send_str(json.dumps([b64(codec.Ping(7))]))
    poll = url()
    assert await post(client, poll + "/xhr") == "o\n"
    assert await post(client, poll + "/xhr_send", json.dumps([b64(codec.Ping(8))])) == ""
    await recorder.until(lambda: len(recorder.messages) == 2)
    got = {conn.transport: data for conn, data in recorder.messages}
    assert got == {"sockjs-websocket": b64(codec.Ping(7)), "xhr-polling": b64(codec.Ping(8))}
    assert codec.decode_text(got["xhr-polling"]) == codec.Ping(8)
    # The other transports are named as the node's metrics expect.
    async with asyncio.timeout(T):
        streams = [await client.post(url() + "/xhr_streaming"),
                   await client.get(url() + "/eventsource"),
                   await client.get(url() + "/htmlfile?c=cb")]
    assert await post(client, url() + "/xhr") == "o\n"
    await client.get(url() + "/jsonp?c=cb")
    await recorder.until(lambda: len(recorder.conns) == 7)
    assert sorted(c.transport for c in recorder.conns) == sorted([
        "sockjs-websocket", "xhr-polling", "xhr-streaming", "eventsource", "htmlfile",
        "xhr-polling", "jsonp"])
    assert all(c.remote == "127.0.0.1" for c in recorder.conns)
    for r in streams:
        r.close()
    await ws.close()


async def test_one_frame_rendered_once_and_shared(client, recorder):
    ws1 = await ws_open(client, url() + "/websocket")
    ws2 = await ws_open(client, url() + "/websocket")
    poll = url()
    assert await post(client, poll + "/xhr") == "o\n"
    await recorder.until(lambda: len(recorder.conns) == 3)
    payload = codec.encode(codec.Pong(7, 123))
    frame = Frame(payload)
    assert all(conn.send(frame) for conn in recorder.conns)
    # One base64 text and one websocket frame for all three connections.
    assert set(frame._rendered) == {SOCKJS_TEXT, SOCKJS_WS}
    m1, m2 = await ws1.receive(timeout=T), await ws2.receive(timeout=T)
    assert m1.type is WSMsgType.TEXT and m1.data == m2.data
    assert frame._rendered[SOCKJS_WS].endswith(m1.data.encode())
    assert await post(client, poll + "/xhr") == m1.data + "\n"
    # A SockJS message, not JSON-quoted twice: the client's message is the base64 text.
    assert m1.data[0] == "a" and json.loads(m1.data[1:]) == [codec.to_text(payload)]
    assert codec.decode_text(json.loads(m1.data[1:])[0]) == codec.Pong(7, 123)
    await ws1.close()
    await ws2.close()


# ---------------------------------------------------------------- close codes, connection_lost


async def test_close_with_code_on_websocket(aiohttp_client, recorder):
    client = await aiohttp_client(make_app(recorder, disconnect_delay=30))
    ws = await ws_open(client, url() + "/websocket")
    conn = await recorder.conn()
    conn.close(4020, "Slow consumer")
    assert conn.closed and not conn.send(Frame(b"\x90"))
    assert (await ws.receive(timeout=T)).data == 'c[4020,"Slow consumer"]'
    assert (await ws.receive(timeout=T)).type is WSMsgType.CLOSE
    # At once, not after disconnect_delay (30 s here).
    await recorder.until(lambda: recorder.lost == [conn], timeout=1.0)


async def test_client_leaving_websocket_is_seen_at_once(aiohttp_client, recorder):
    client = await aiohttp_client(make_app(recorder, disconnect_delay=30))
    ws = await ws_open(client, url() + "/websocket")
    conn = await recorder.conn()
    await ws.close()
    await recorder.until(lambda: recorder.lost == [conn], timeout=1.0)
    assert conn.closed


async def test_close_with_code_on_polling(client, recorder):
    poll = url()
    assert await post(client, poll + "/xhr") == "o\n"
    conn = await recorder.conn()
    conn.send(Frame(codec.encode(codec.Ping(1))))
    conn.close(4010, "Invalid token")
    assert not conn.send(Frame(b"\x90"))
    # Queued frames first, then the close frame; then the session answers "go away".
    assert await post(client, poll + "/xhr") == f'a["{b64(codec.Ping(1))}"]\n'
    assert await post(client, poll + "/xhr") == 'c[4010,"Invalid token"]\n'
    await recorder.until(lambda: recorder.lost == [conn], timeout=1.0)
    assert await post(client, poll + "/xhr") == 'c[3000,"Go away!"]\n'


# ---------------------------------------------------------------- fault 2: concurrent / aborted


async def test_refused_second_poll_leaves_the_session_alone(client, recorder):
    poll = url()
    assert await post(client, poll + "/xhr") == "o\n"
    conn = await recorder.conn()
    first = asyncio.ensure_future(post(client, poll + "/xhr"))
    await poll_until(lambda: conn.session._waiter is not None)  # the first poll is held
    assert await post(client, poll + "/xhr") == 'c[2010,"Another connection still open"]\n'
    assert conn.send(Frame(codec.encode(codec.Ping(2))))
    assert await first == f'a["{b64(codec.Ping(2))}"]\n'
    assert not recorder.lost and not conn.closed


@pytest.mark.parametrize("cancellation", [False, True], ids=["default", "handler_cancellation"])
@pytest.mark.parametrize("transport", ["xhr", "xhr_streaming"])
async def test_request_after_an_aborted_one(aiohttp_client, recorder, transport, cancellation):
    # aiohttp's default leaves the handler of a dead request running; with
    # handler_cancellation=True it is cancelled. Both must end the same way.
    client = await aiohttp_client(make_app(recorder),
                                  server_kwargs={"handler_cancellation": cancellation})
    path = url() + "/" + transport
    if transport == "xhr":
        assert await post(client, path) == "o\n"
        async with asyncio.timeout(T):
            r = await client.post(path)  # the headers come at once, the body waits
        r.close()  # the client gives up: its connection is closed
    else:
        async with asyncio.timeout(T):
            r = await client.post(path)
            assert await r.content.readline() == b"h" * 2048 + b"\n"
            assert await r.content.readline() == b"o\n"
        r.close()
    conn = await recorder.conn()
    await asyncio.sleep(0.05)
    async with asyncio.timeout(T):
        r = await client.post(path)
        if transport == "xhr_streaming":
            await r.content.readline()  # prelude
        first = (await r.content.readline()).decode()
        r.close()
    assert first in ("o\n", 'c[1002,"Connection interrupted"]\n')
    await recorder.until(lambda: conn in recorder.lost)  # the room sees the leave


# ---------------------------------------------------------------- fault 3: abandoned sessions


@pytest.mark.parametrize("transport", ["xhr", "jsonp?c=cb"])
async def test_abandoned_polling_session_expires(client, recorder, transport):
    sid = str(uuid.uuid4())
    async with asyncio.timeout(T):
        await client.request("POST" if transport == "xhr" else "GET", f"/play/000/{sid}/{transport}")
    conn = await recorder.conn()
    assert conn.session.id == sid
    await recorder.until(lambda: recorder.lost == [conn], timeout=DELAY + 2.0)
    assert conn.closed and not conn.send(Frame(b"\x90"))


async def test_abandoned_mid_poll_expires(client, recorder):
    path = url() + "/xhr"
    assert await post(client, path) == "o\n"
    conn = await recorder.conn()
    async with asyncio.timeout(T):
        r = await client.post(path)  # the headers come at once, the body waits
    r.close()  # and no further request: the sweep notices the dead request
    await recorder.until(lambda: recorder.lost == [conn], timeout=DELAY + 2.0)


async def test_polled_session_does_not_expire(client, recorder):
    path = url() + "/xhr"
    assert await post(client, path) == "o\n"
    conn = await recorder.conn()
    loop = asyncio.get_running_loop()
    end = loop.time() + 3 * DELAY
    while loop.time() < end:
        conn.send(Frame(b"\x90"))
        assert (await post(client, path)).startswith("a[")
        await asyncio.sleep(DELAY / 3)
    assert not recorder.lost and not conn.closed


# ---------------------------------------------------------------- fault 4: bounded queue


async def test_send_queue_is_bounded(client, recorder):
    path = url() + "/xhr"
    assert await post(client, path) == "o\n"
    conn = await recorder.conn()
    frames = [Frame(codec.encode(codec.Ping(i))) for i in range(6)]
    assert [conn.send(f) for f in frames] == [True] * 4 + [False] * 2
    assert conn.backlog() == 4
    body = await post(client, path)
    assert json.loads(body[1:]) == [b64(codec.Ping(i)) for i in range(4)]
    assert conn.backlog() == 0
    assert conn.send(frames[5])


async def assert_bounded(conn: SockJSConnection) -> None:
    """32 KiB frames to a client that does not read: `send` refuses once max_send_queue
    (4) frames are buffered."""
    frame = Frame(b"\xc4" + bytes(32 * 1024))
    accepted = 0
    for _ in range(5000):
        if not conn.send(frame):
            break
        accepted += 1
        await asyncio.sleep(0)
    else:
        pytest.fail("send never refused")
    assert accepted > 4 and conn.backlog() >= 4


async def test_stalled_websocket_client_is_bounded(client, recorder):
    # A client that stops reading: the direct writes fill the socket, then aiohttp's
    # buffer; `send` refuses once max_send_queue (4) frames are buffered.
    ws = await ws_open(client, url() + "/websocket")
    conn = await recorder.conn()
    await assert_bounded(conn)
    await ws.close()


# ---------------------------------------------------------------- fault 5: binary frames


async def test_binary_frame_on_sockjs_websocket_is_delivered(client, recorder):
    ws = await ws_open(client, url() + "/websocket")
    payload = codec.encode(codec.Ping(9))
    await ws.send_bytes(payload)
    await recorder.until(lambda: len(recorder.messages) == 1)
    assert recorder.messages[0][1] == payload
    assert codec.decode(recorder.messages[0][1]) == codec.Ping(9)
    await ws.close()


async def test_oversized_websocket_frame_closes_1009(aiohttp_client, recorder):
    client = await aiohttp_client(make_app(recorder, max_frame_bytes=1024))
    ws = await ws_open(client, url() + "/websocket")
    conn = await recorder.conn()
    await ws.send_bytes(bytes(2048))
    msg = await ws.receive(timeout=T)
    assert msg.type is WSMsgType.CLOSE and msg.data == 1009
    await recorder.until(lambda: recorder.lost == [conn])
    assert not recorder.messages


async def test_non_string_message_reaches_handler_as_json_text(client, recorder):
    path = url()
    assert await post(client, path + "/xhr") == "o\n"
    await post(client, path + "/xhr_send", '[{"a": 1}, 2]')
    await recorder.until(lambda: len(recorder.messages) == 2)
    assert [d for _, d in recorder.messages] == ['{"a": 1}', "2"]


async def test_heartbeats(aiohttp_client, recorder):
    client = await aiohttp_client(make_app(recorder, heartbeat_delay=0.2, disconnect_delay=5))
    path = url() + "/xhr"
    assert await post(client, path) == "o\n"
    assert await post(client, path) == "h\n"  # an idle poll ends with a heartbeat frame
    async with asyncio.timeout(T):
        ws = await client.ws_connect(url() + "/websocket", autoping=False)
    assert (await ws.receive(timeout=T)).data == "o"
    ping = await ws.receive(timeout=T)  # on the websocket: a websocket ping
    assert ping.type is WSMsgType.PING
    await ws.pong(ping.data)
    await ws.close()


async def test_max_sessions(aiohttp_client, recorder):
    client = await aiohttp_client(make_app(recorder, max_sessions=2))
    first = url()
    assert await post(client, first + "/xhr") == "o\n"
    ws = await ws_open(client, url() + "/websocket")
    async with asyncio.timeout(T):
        r = await client.post(url() + "/xhr")
        assert (r.status, await r.text()) == (503, "Too many sessions")
        r = await client.get(url() + "/websocket")
        assert r.status == 503
    assert await post(client, first + "/xhr_send", '["x"]') == ""  # existing ones go on
    await recorder.until(lambda: [d for _, d in recorder.messages] == ["x"])
    await ws.close()
    await recorder.until(lambda: len(recorder.lost) == 1)
    # the closed websocket session expires (after DELAY), and its place is free again
    async with asyncio.timeout(DELAY + T):
        while (r := await client.post(url() + "/xhr")).status == 503:
            r.close()
            await asyncio.sleep(0.05)
        assert await r.text() == "o\n"


async def test_websocket_order_kept_between_queue_and_direct_writes(client, recorder):
    ws = await ws_open(client, url() + "/websocket")
    conn = await recorder.conn()
    assert conn.send_text("queued")  # waits in the session queue for its writer task
    frames = [Frame(codec.encode(codec.Ping(i))) for i in range(3)]
    assert all(conn.send(f) for f in frames)  # the queue is not empty: queued behind it
    await poll_until(lambda: not conn.session._queue)  # the writer task drained it
    last = Frame(codec.encode(codec.Ping(3)))
    assert conn.send(last)  # the queue is drained: written directly
    assert SOCKJS_WS in last._rendered and all(SOCKJS_WS not in f._rendered for f in frames)
    got = []
    while len(got) < 5:
        data = json.loads((await ws.receive(timeout=T)).data[1:])
        got += data
    assert got == ["queued"] + [b64(codec.Ping(i)) for i in range(4)]
    await ws.close()


# ---------------------------------------------------------------- xhr-streaming direct writes


async def stream_lines(r: aiohttp.ClientResponse, n: int) -> list[str]:
    """The next `n` SockJS frames (one per line) of a streaming response."""
    lines = []
    async with asyncio.timeout(T):
        while len(lines) < n:
            line = await r.content.readline()
            assert line, f"the response ended after {lines}"
            lines.append(line.decode().rstrip("\n"))
    return lines


async def test_xhr_streaming_order_kept_across_direct_writes_and_responses(aiohttp_client, recorder):
    limit = 1024  # the response's bytes of SockJS frames (the prelude not counted)
    client = await aiohttp_client(make_app(recorder, response_limit=limit, max_send_queue=64))
    path = url()
    async with asyncio.timeout(T):
        r = await client.post(path + "/xhr_streaming")
    assert await stream_lines(r, 2) == ["h" * 2048, "o"]
    conn = await recorder.conn()
    assert conn.send_text("queued")  # waits in the session queue for the streaming loop
    frames = [Frame(codec.encode(codec.Ping(i))) for i in range(300)]
    assert conn.send(frames[0])  # the queue is not empty: queued behind it
    first = await stream_lines(r, 1)
    assert first == ['a["queued","' + b64(codec.Ping(0)) + '"]']
    await poll_until(lambda: not conn.session._queue)
    size = len("o\n") + len(first[0]) + 1
    got: list[str] = []
    sent = 1
    while size <= limit:  # the package's rule: the frame that passes the limit ends it
        assert conn.send(frames[sent])  # written at once while this request holds the session
        sent += 1
        got += await stream_lines(r, 1)
        size += len(got[-1]) + 1
    async with asyncio.timeout(T):
        assert await r.content.readline() == b""  # the response ended there
    assert "sockjs-chunk" in frames[1]._rendered  # written directly, as a pre-rendered chunk
    await poll_until(lambda: conn.session.stream is None)  # the request let the session go
    # Between two requests the frames wait in the session; the next request gets them first.
    assert conn.send(frames[sent]) and conn.send(frames[sent + 1])
    async with asyncio.timeout(T):
        r2 = await client.post(path + "/xhr_streaming")
    assert await stream_lines(r2, 2) == ["h" * 2048, "a" + json.dumps(
        [b64(codec.Ping(sent)), b64(codec.Ping(sent + 1))], separators=(",", ":"))]
    await poll_until(lambda: not conn.session._queue)
    assert conn.send(frames[sent + 2])
    got += await stream_lines(r2, 1)
    singles = [json.loads(line[1:]) for line in got]
    assert [m for m in singles if len(m) != 1] == []
    assert [m[0] for m in singles] == ([b64(codec.Ping(i)) for i in range(1, sent)]
                                       + [b64(codec.Ping(sent + 2))])
    r2.close()


async def test_stalled_xhr_streaming_client_is_bounded(client, recorder):
    async with asyncio.timeout(T):
        r = await client.post(url() + "/xhr_streaming")
    assert await stream_lines(r, 2) == ["h" * 2048, "o"]
    conn = await recorder.conn()
    await assert_bounded(conn)
    r.close()


async def test_sweep_interrupting_a_websocket_session_leaves_no_unretrieved_error(aiohttp_client, recorder):
    """The sweep interrupts a session whose request's client is gone (`interrupt`): on the
    websocket transport that wakes the writer task with the ConnectionResetError. The
    transport must end quietly (no "Task exception was never retrieved" later)."""
    loop = asyncio.get_running_loop()
    errors: list[dict] = []
    loop.set_exception_handler(lambda _loop, context: errors.append(context))
    try:
        app = web.Application()
        manager = add_sockjs_routes(app, recorder, disconnect_delay=30, max_send_queue=4)
        client = await aiohttp_client(app)
        ws = await ws_open(client, url() + "/websocket")
        conn = await recorder.conn()
        session = conn.session
        await poll_until(lambda: session._waiter is not None)  # the writer waits for a frame
        await manager.interrupt(session, ConnectionResetError("client went away"))
        await recorder.until(lambda: recorder.lost == [conn])
        await ws.close()
        await poll_until(lambda: not manager.acquired)
        for _ in range(3):
            await asyncio.sleep(0)
        gc.collect()
        await asyncio.sleep(0)
        assert [c.get("message") for c in errors] == []
    finally:
        loop.set_exception_handler(None)
