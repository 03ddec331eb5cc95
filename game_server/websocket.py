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
import logging
import socket
import struct

from aiohttp import WSMsgType, web

from .connection import Connection, ConnectionHandler, Frame

log = logging.getLogger(__name__)

WS_BINARY = "ws-binary"  # Frame.rendered key


def ws_binary_frame(payload: bytes) -> bytes:
    """One final, unmasked binary websocket frame (RFC 6455 5.2) carrying `payload`."""
    n = len(payload)
    if n < 126:
        header = bytes((0x82, n))
    elif n < 1 << 16:
        header = struct.pack("!BBH", 0x82, 126, n)
    else:
        header = struct.pack("!BBQ", 0x82, 127, n)
    return header + payload


class GameWebSocket(web.WebSocketResponse):
    """aiohttp's websocket, telling its `WebSocketConnection` when it closes.

    Once aiohttp has sent a close frame nothing may follow it; `close()` is where aiohttp
    sends one (its own error paths included) while the transport stays open for the
    peer's reply, so the connection learns it here instead of asking `ws.closed` before
    every frame (one object fewer touched per client per patch). aiohttp's other way to
    close (a ping/pong failure) closes the transport at once, which `send` checks.
    """

    conn: WebSocketConnection | None = None

    async def close(self, *args, **kwargs) -> bool:
        if self.conn is not None:
            self.conn._closed = True
        return await super().close(*args, **kwargs)


class WebSocketConnection(Connection):
    """A raw websocket client. Writes bypass aiohttp's writer (frames are pre-built)."""

    __slots__ = ("ws", "_transport", "_sock", "_max_frames", "_last_len", "_closed",
                 "_close_task")

    transport = "websocket"

    def __init__(self, ws: web.WebSocketResponse, tr: asyncio.Transport, remote: str,
                 max_send_queue: int):
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
        self._close_task: asyncio.Task | None = None

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
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(RuntimeError):  # no running loop: interpreter shutdown
            self._close_task = asyncio.get_running_loop().create_task(self._close(code, reason))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.ws.close(code=code, message=reason.encode()[:123])
        except Exception:  # a dead socket: the transport is closed either way
            log.debug("close of %s failed", self.remote, exc_info=True)
            self._transport.close()

    async def wait_closed(self) -> None:
        if self._close_task is not None:
            with contextlib.suppress(Exception):
                await self._close_task


def websocket_route(handler: ConnectionHandler, *, max_send_queue: int, max_message_bytes: int,
                    socket_send_buffer: int = 0, close_timeout: float = 2.0):
    """An aiohttp handler serving the raw websocket.

    aiohttp's own frame limit is set well above `max_message_bytes` so that an oversized
    message reaches the codec and gets the protocol's 4002; only frames above
    `16 * max_message_bytes` (min 64 KiB) are cut by aiohttp itself (close 1009).
    """
    frame_limit = max(64 * 1024, 16 * max_message_bytes)

    async def play_websocket(request: web.Request) -> web.StreamResponse:
        ws = GameWebSocket(compress=False, max_msg_size=frame_limit, timeout=close_timeout,
                           autoping=True)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Expected a websocket upgrade\n")
        await ws.prepare(request)
        tr = request.transport
        if tr is None or tr.is_closing():
            return ws
        if socket_send_buffer:
            sock = tr.get_extra_info("socket")
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, socket_send_buffer)
        conn = ws.conn = WebSocketConnection(ws, tr, request.remote or "", max_send_queue)
        handler.connection_made(conn)
        try:
            async for msg in ws:
                if msg.type is WSMsgType.BINARY or msg.type is WSMsgType.TEXT:
                    handler.message_received(conn, msg.data)
                else:  # ERROR (aiohttp already closed it)
                    break
        finally:
            conn._closed = True
            handler.connection_lost(conn)
        await conn.wait_closed()
        return ws

    return play_websocket
