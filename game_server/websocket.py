"""The raw binary websocket at `/play/websocket`: msgpack in binary frames both ways.

State frames are the hot path (docs/../PERFORMANCE.md): each `Frame` is rendered once as a
complete, unmasked websocket frame (header + payload) and written as is to every
connection (the socket's `send` while asyncio's buffer is empty, else `transport.write`),
after checking that the transport is open and its write buffer is below the client's
limit. A full buffer means a slow client: `send`
returns False and the room decides (drop, keyframe later, close 4020).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import socket
import struct
from collections.abc import Callable
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSMsgType, web, web_ws
from aiohttp._websocket.reader import WebSocketDataQueue

from .connection import Connection, ConnectionHandler, Frame

if TYPE_CHECKING:
    from .admission import Admission
    from .metrics import Metrics

log = logging.getLogger(__name__)

WS_BINARY = "ws-binary"  # Frame.rendered key


OP_TEXT, OP_BINARY, OP_CLOSE = 0x1, 0x2, 0x8  # websocket opcodes (RFC 6455 5.2)


def ws_frame(opcode: int, payload: bytes) -> bytes:
    """One final, unmasked websocket frame (RFC 6455 5.2): `opcode` carrying `payload`."""
    n = len(payload)
    if n < 126:
        header = bytes((0x80 | opcode, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x80 | opcode, 126, n)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 127, n)
    return header + payload


def ws_binary_frame(payload: bytes) -> bytes:
    """The raw websocket's rendering of a `Frame` (cached per Frame under `WS_BINARY`)."""
    return ws_frame(OP_BINARY, payload)


#: Close reasons aiohttp leaves empty when it closes on its own (docs/protocol.md).
AIOHTTP_CLOSE_REASONS = {1009: b"Message too big"}


class ReasonedWebSocket(web.WebSocketResponse):
    """aiohttp's websocket, whose own closes (a frame above `max_msg_size`: 1009) carry the
    reason of docs/protocol.md instead of an empty one."""

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        if not message:
            message = AIOHTTP_CLOSE_REASONS.get(code, b"")
        return await super().close(code=code, message=message, drain=drain)


#: The aiohttp minor version whose internals `DirectQueue` relies on (pyproject.toml pins
#: it; tests/game_server/test_ws_direct.py fails loudly when an upgrade breaks them). On
#: any other version the node reads through aiohttp's queue, as it did before.
AIOHTTP_TESTED = "3.14"
DIRECT_READ = (aiohttp.__version__.rsplit(".", 1)[0] == AIOHTTP_TESTED
               and isinstance(getattr(web_ws, "WebSocketDataQueue", None), type))
_BINARY, _TEXT = WSMsgType.BINARY, WSMsgType.TEXT


class DirectQueue(WebSocketDataQueue):
    """aiohttp's queue of parsed websocket messages, handing each data message to the
    connection handler as soon as aiohttp's parser has it, in the transport's
    `data_received`: no future resolved, no task woken, no `await` per message (the
    per-message cost of `async for msg in ws`). Control frames, close and errors, and every
    message while the queue holds one (so the order is kept), go through the queue to the
    handler's read loop as before. `handler` is set once the connection is made."""

    __slots__ = ("handler", "conn")

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.handler: ConnectionHandler | None = None
        self.conn: Connection | None = None

    def feed_data(self, data, size) -> None:  # type: ignore[override]
        handler = self.handler
        if handler is not None and not self._buffer:
            kind = data[0]
            if kind is _BINARY or kind is _TEXT:
                handler.message_received(self.conn, data[1])
                return
        super().feed_data(data, size)


def post_start_with_queue(post_start: Callable[[], None], queue: type) -> None:
    """Run aiohttp's `WebSocketResponse._post_start` (`post_start`) with `queue` as the
    parser's queue when DIRECT_READ: aiohttp builds the queue in that method from web_ws's
    module name, swapped for the call (synchronous: nothing else runs meanwhile)."""
    if not DIRECT_READ:
        post_start()
        return
    stock = web_ws.WebSocketDataQueue
    web_ws.WebSocketDataQueue = queue  # type: ignore[misc]
    try:
        post_start()
    finally:
        web_ws.WebSocketDataQueue = stock  # type: ignore[misc]


class GameWebSocket(ReasonedWebSocket):
    """aiohttp's websocket, telling its `WebSocketConnection` when it closes.

    The node's own closes do not go through aiohttp: `WebSocketConnection.close` writes
    the close frame itself and the handler's read loop goes on until the client's reply.
    (aiohttp's `close()` from another task than the reader wakes the reader and closes
    the socket at once: the client's inputs still in flight then meet a closed socket,
    Linux answers with a reset, and a client still reading its backlog loses the close
    frame: 1006 instead of the code.) So `close()` here, called by aiohttp when the
    client's reply (or EOF) arrives or when the handler returns, only ends the TCP
    connection if the node's close frame is out; otherwise (the client closed first,
    aiohttp's error paths) it is aiohttp's, and the connection learns it is closed
    instead of asking `ws.closed` before every frame (one object fewer touched per
    client per patch). aiohttp's other way to close (a ping/pong failure) closes the
    transport at once, which `send` checks.
    """

    conn: WebSocketConnection | None = None

    def _post_start(self, request, protocol, writer) -> None:  # type: ignore[no-untyped-def]
        """aiohttp's, with a `DirectQueue` as the parser's queue (DIRECT_READ)."""
        post_start_with_queue(functools.partial(super()._post_start, request, protocol, writer),
                              DirectQueue)

    async def close(self, *, code: int = 1000, message: bytes = b"", drain: bool = True) -> bool:
        conn = self.conn
        if conn is not None:
            if conn._close_sent:  # the node's close frame is out: no second one
                conn._end()
                return False
            conn._closed = True
        return await super().close(code=code, message=message, drain=drain)


class WebSocketConnection(Connection):
    """A raw websocket client. Writes bypass aiohttp's writer (frames are pre-built)."""

    __slots__ = ("ws", "_transport", "_sock", "_max_frames", "_last_len", "_closed",
                 "_close_sent", "_close_timeout", "_give_up")

    transport = "websocket"

    def __init__(self, ws: web.WebSocketResponse, tr: asyncio.Transport, remote: str,
                 max_send_queue: int, close_timeout: float = 2.0):
        self.ws = ws
        self._transport = tr
        # A plain TCP socket is written with its own `send` while the transport's buffer
        # is empty (the common case): the syscall `transport.write` makes, without
        # asyncio's bookkeeping. `send(2)`, not `os.write`: write(2) on a socket goes
        # through the VFS layer and costs ~0.7 µs more per call here.
        self._sock: socket.socket | None = None
        if tr.get_extra_info("sslcontext") is None:
            # get_extra_info("socket") is asyncio's TransportSocket wrapper (no send);
            # the socket it wraps is the transport's own, closed only after the
            # transport reports is_closing(), which send() checks first.
            sock = getattr(tr.get_extra_info("socket"), "_sock", None)
            if isinstance(sock, socket.socket):
                self._sock = sock
        self.remote = remote
        self.state = None
        self._max_frames = max_send_queue
        self._last_len = 64
        self._closed = False
        self._close_sent = False
        self._close_timeout = close_timeout
        self._give_up: asyncio.TimerHandle | None = None

    def send(self, frame: Frame) -> bool:
        if self._closed:
            return False
        tr = self._transport
        if tr.is_closing():  # (after a close frame: _closed, see GameWebSocket)
            return False
        data = frame.rendered(WS_BINARY, ws_binary_frame)
        buffered = tr.get_write_buffer_size()
        if buffered:
            n = self._last_len = len(data)
            # The backlog limit is in frames: the buffered bytes counted in frames of this size.
            if buffered >= self._max_frames * n:
                return False
            tr.write(data)
            return True
        sock = self._sock
        if sock is None:
            tr.write(data)
            return True
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:  # reset or broken: the transport's reader sees it and closes
            return False
        if sent != len(data):  # the kernel buffer is full: the transport keeps the rest
            tr.write(data[sent:])
        return True

    def send_urgent(self, frame: Frame) -> None:
        """Write past the backlog limit: the final `error` before a close."""
        if not (self._closed or self._transport.is_closing()):
            self._transport.write(frame.rendered(WS_BINARY, ws_binary_frame))

    def backlog(self) -> int:
        tr = self._transport
        if tr.is_closing():
            return 0
        return tr.get_write_buffer_size() // self._last_len

    @property
    def closed(self) -> bool:
        return self._closed or self.ws.closed

    def close(self, code: int, reason: str) -> None:
        """Write the close frame (after whatever is buffered, past the backlog limit) and
        keep the TCP connection open for the client's reply: the handler's read loop
        drops the client's messages until then. `_end` closes it on the reply, or after
        `close_timeout` for a client that does not answer."""
        if self._closed:
            return
        self._closed = True
        tr = self._transport
        if tr.is_closing():
            return
        tr.write(ws_frame(OP_CLOSE, struct.pack("!H", code) + reason.encode()[:123]))
        self._close_sent = True
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no running loop: interpreter shutdown
            tr.abort()
            return
        self._give_up = loop.call_later(self._close_timeout, self._end)

    def _end(self) -> None:
        """End the TCP connection after the close frame. Still unsent bytes at this point
        belong to a client that stopped reading: abort (it sees 1006, having read nothing
        of the last seconds anyway); else close (FIN after the last byte)."""
        if self._give_up is not None:
            self._give_up.cancel()
            self._give_up = None
        tr = self._transport
        if tr.get_write_buffer_size():
            tr.abort()
        elif not tr.is_closing():
            tr.close()


#: Bytes read from a websocket per `recv`. aiohttp parses a whole read before the node
#: sees its first frame: 256 KiB (asyncio's and uvloop's read size) of 6-byte PING frames is
#: 43,000 frames (each an object: the cyclic collector ran over them too), about 0.4 s of a
#: loop that every room shares; 4 KiB bounds that to ~700 frames, a millisecond or two (a
#: game message is at most `max_message_bytes`).
READ_CHUNK = 4 * 1024


def bound_reads(tr: asyncio.BaseTransport | None) -> None:
    """Bound what one read on `tr` returns: asyncio's selector transports read at most
    `READ_CHUNK` bytes per `recv`; a transport with no read size to set (uvloop's) gets
    `READ_CHUNK` as its socket's receive buffer (Linux doubles it), so the kernel holds at
    most that much for one read. (Not on asyncio's: a small buffer makes the kernel send a
    window update after most reads, about 6% more node CPU with 1,000 playing players.)"""
    if tr is None:
        return
    if isinstance(getattr(tr, "max_size", None), int):
        tr.max_size = READ_CHUNK  # type: ignore[attr-defined]
        return
    sock = tr.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, READ_CHUNK)


async def stop_reading(tr: asyncio.BaseTransport | None, close_timeout: float) -> None:
    """After a flood close: read nothing more (its frames cost CPU even when dropped) and
    give the client `close_timeout` to read the close frame before the connection ends."""
    if tr is not None and not tr.is_closing():
        with contextlib.suppress(AttributeError, RuntimeError):
            tr.pause_reading()  # type: ignore[attr-defined]
    await asyncio.sleep(close_timeout)


def websocket_route(handler: ConnectionHandler, *, max_send_queue: int, max_message_bytes: int,
                    socket_send_buffer: int = 64 * 1024, close_timeout: float = 2.0,
                    admission: Admission | None = None, metrics: Metrics | None = None):
    """An aiohttp handler serving the raw websocket.

    aiohttp's own frame limit is set well above `max_message_bytes` so that an oversized
    message reaches the codec and gets the protocol's 4002; only frames above
    `16 * max_message_bytes` (min 64 KiB) are cut by aiohttp itself (close 1009
    `Message too big`). With `admission`, an address over its unjoined limits gets 429
    before the upgrade; control frames (PING, PONG) go through
    `handler.control_frame(conn)` when the handler has it (`AdmissionHandler`): past the
    budget the connection is closed (4004) and no longer read.
    """
    frame_limit = max(64 * 1024, 16 * max_message_bytes)
    control_frame = getattr(handler, "control_frame", None)

    async def play_websocket(request: web.Request) -> web.StreamResponse:
        ws = GameWebSocket(compress=False, max_msg_size=frame_limit, timeout=close_timeout,
                           autoping=False)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Expected a websocket upgrade\n")
        if admission is not None:
            refused = admission.may_connect(request.remote or "")
            if refused is not None:
                return web.Response(status=429, text=refused + "\n")
        await ws.prepare(request)
        tr = request.transport
        if tr is None or tr.is_closing():
            return ws
        bound_reads(tr)
        if socket_send_buffer:
            sock = tr.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_send_buffer)
        conn = ws.conn = WebSocketConnection(ws, tr, request.remote or "", max_send_queue,
                                             close_timeout)
        handler.connection_made(conn)
        queue = ws._reader
        if isinstance(queue, DirectQueue):  # data messages from data_received on
            queue.conn = conn
            queue.handler = handler
        try:
            # Until the client's close reply: after the node's close frame the node drops
            # what the client still sends (conn.closed), but reads it. Data messages come
            # here only while the queue holds something (DirectQueue).
            async for msg in ws:
                kind = msg.type
                if kind is WSMsgType.BINARY or kind is WSMsgType.TEXT:
                    handler.message_received(conn, msg.data)
                elif kind is WSMsgType.PING or kind is WSMsgType.PONG:
                    if control_frame is not None and not control_frame(conn):
                        await stop_reading(tr, close_timeout)
                        break
                    if kind is WSMsgType.PING and not conn.closed:
                        await ws.pong(msg.data)
                else:  # ERROR (aiohttp already closed it: 1009 for a frame too big)
                    if metrics is not None and ws.close_code == 1009:
                        metrics.refused["frame_size"] += 1
                    break
        finally:
            if isinstance(queue, DirectQueue):
                queue.handler = None
            conn._closed = True
            handler.connection_lost(conn)
            if conn._close_sent:
                conn._end()
        return ws

    return play_websocket
