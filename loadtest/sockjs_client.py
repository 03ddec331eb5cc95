"""A small SockJS 0.3 client over aiohttp: the `websocket`, `xhr_streaming` and `xhr`
(polling) receiving transports, with `xhr_send` for the two HTTP ones.

Only what the bots need: one session per object, text messages, the close frame's code.
SockJS frames (https://github.com/sockjs/sockjs-protocol, version 0.3):

- ``o`` open, ``h`` heartbeat, ``a["m1","m2"]`` messages, ``c[code,"reason"]`` close;
- on ``xhr_streaming`` a response starts with 2048 ``h`` and a newline and ends after the
  server's size limit (the client opens the next one); on ``xhr`` each response carries
  one frame; both put a newline after every frame;
- the client sends a JSON array of strings: a websocket text frame, or the body of a
  ``POST .../xhr_send`` (answer 204).

`recv()` does the reading itself (a poll, the next streamed line, the next websocket
frame): a caller that stops calling it stops reading, as a frozen browser tab would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import uuid
from collections import deque

import aiohttp

TRANSPORTS = ("websocket", "xhr_streaming", "xhr")
MAX_FRAME_BYTES = 4 * 1024 * 1024  # a single SockJS frame (line) larger than this is refused
POLL_TIMEOUT = 40.0  # seconds one poll may stay open (the server sends `h` every 25 s)


class SockJSError(Exception):
    """The session failed outside the protocol (HTTP status, broken frame, timeout)."""


class SockJSClient:
    """One SockJS session to `base_url` (for example ``http://127.0.0.1:8001/play``).

    After `recv()` returns None the session is over: `close_code` holds the code of the
    server's close frame, or None if it ended another way (`close_reason` says how).
    """

    def __init__(self, http: aiohttp.ClientSession, base_url: str, transport: str = "websocket",
                 *, connect_timeout: float = 10.0, max_frame_bytes: int = MAX_FRAME_BYTES):
        if transport not in TRANSPORTS:
            raise ValueError(f"unknown SockJS transport {transport!r}; one of {TRANSPORTS}")
        self.http = http
        self.transport = transport
        self.url = f"{base_url.rstrip('/')}/{random.randrange(1000):03d}/{uuid.uuid4().hex}"
        self.connect_timeout = connect_timeout
        self.max_frame_bytes = max_frame_bytes
        self.bytes_in = 0
        self.bytes_out = 0
        self.close_code: int | None = None
        self.close_reason = ""
        self.closed = False
        self._pending: deque[str] = deque()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._stream: aiohttp.ClientResponse | None = None
        self._buffer = b""
        self._outbox: list[str] = []
        self._sender: asyncio.Task | None = None
        self.send_error: str | None = None

    # --- opening -------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the session and wait for the ``o`` frame."""
        async with asyncio.timeout(self.connect_timeout):
            if self.transport == "websocket":
                self._ws = await self.http.ws_connect(
                    self.url + "/websocket", autoping=True, compress=0, max_msg_size=self.max_frame_bytes)
            frame = await self._next_frame()
            while frame[:1] == "h":  # the xhr_streaming prelude, or a heartbeat
                frame = await self._next_frame()
        if frame != "o":
            raise SockJSError(f"expected the open frame, got {frame[:40]!r}")

    # --- receiving ---------------------------------------------------------------------------

    async def recv(self) -> str | None:
        """The next message, or None once the session is closed."""
        while not self._pending:
            if self.closed:
                return None
            try:
                self._handle(await self._next_frame())
            except (aiohttp.ClientError, SockJSError, TimeoutError, ValueError) as exc:
                self._finish(None, f"{type(exc).__name__}: {exc}"[:200])
                return None
        return self._pending.popleft()

    def _handle(self, frame: str) -> None:
        kind = frame[:1]
        if kind == "a":
            messages = json.loads(frame[1:])
            if not isinstance(messages, list) or not all(isinstance(m, str) for m in messages):
                raise SockJSError("malformed message frame")
            self._pending.extend(messages)
        elif kind == "c":
            try:
                code, reason = json.loads(frame[1:])
            except (ValueError, TypeError):
                code, reason = None, "malformed close frame"
            self._finish(code if isinstance(code, int) else None, str(reason))
        elif kind in ("h", "o"):
            pass  # heartbeat (or a repeated open on a reopened stream)
        elif kind == "m":  # single-message frame of old servers
            self._pending.append(json.loads(frame[1:]))
        else:
            raise SockJSError(f"unknown frame {frame[:40]!r}")

    async def _next_frame(self) -> str:
        if self.transport == "websocket":
            return await self._ws_frame()
        if self.transport == "xhr_streaming":
            return await self._stream_frame()
        return await self._poll_frame()

    async def _ws_frame(self) -> str:
        assert self._ws is not None
        msg = await self._ws.receive()
        if msg.type == aiohttp.WSMsgType.TEXT:
            self.bytes_in += len(msg.data)
            return msg.data
        if msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
            code = self._ws.close_code
            raise SockJSError(f"websocket closed without a close frame (code {code})")
        if msg.type == aiohttp.WSMsgType.ERROR:
            raise SockJSError(f"websocket error: {msg.data}")
        raise SockJSError(f"unexpected websocket message type {msg.type}")

    async def _stream_frame(self) -> str:
        """The next line of the current xhr_streaming response; opens one when needed."""
        while True:
            newline = self._buffer.find(b"\n")
            if newline >= 0:
                line, self._buffer = self._buffer[:newline], self._buffer[newline + 1:]
                if line:
                    return line.decode()
                continue
            if len(self._buffer) > self.max_frame_bytes:
                raise SockJSError("frame too large")
            if self._stream is None:
                self._stream = await self.http.post(
                    self.url + "/xhr_streaming", timeout=aiohttp.ClientTimeout(sock_read=POLL_TIMEOUT))
                if self._stream.status != 200:
                    status = self._stream.status
                    self._stream.release()
                    self._stream = None
                    raise SockJSError(f"xhr_streaming: HTTP {status}")
            chunk = await self._stream.content.readany()
            if not chunk:  # the server ended this response (size limit): open the next one
                self._stream.release()
                self._stream = None
                if self._buffer:
                    raise SockJSError("xhr_streaming: response ended inside a frame")
                continue
            self.bytes_in += len(chunk)
            self._buffer += chunk

    async def _poll_frame(self) -> str:
        """One xhr poll: the frame(s) the server had or the next one it gets."""
        if self._buffer:
            return self._take_buffered_line()
        async with self.http.post(self.url + "/xhr",
                                  timeout=aiohttp.ClientTimeout(total=POLL_TIMEOUT)) as response:
            if response.status != 200:
                raise SockJSError(f"xhr: HTTP {response.status}")
            body = await response.content.read(self.max_frame_bytes + 1)
        if len(body) > self.max_frame_bytes:
            raise SockJSError("frame too large")
        self.bytes_in += len(body)
        self._buffer = body
        return self._take_buffered_line()

    def _take_buffered_line(self) -> str:
        line, _, self._buffer = self._buffer.partition(b"\n")
        return line.decode()

    # --- sending -------------------------------------------------------------------------------

    async def send(self, message: str) -> None:
        """Send one message. Over HTTP it returns at once: a background POST carries it,
        with whatever else was sent while the previous POST was in flight (as sockjs-client
        batches them); a failed POST is kept in `send_error` (the reader sees the end)."""
        if self.closed:
            raise SockJSError("session closed")
        if self.transport == "websocket":
            assert self._ws is not None
            body = json.dumps([message])
            self.bytes_out += len(body)
            await self._ws.send_str(body)
            return
        self._outbox.append(message)
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        """POST what is queued, again while more arrived meanwhile (one POST in flight)."""
        try:
            while self._outbox and not self.closed:
                batch, self._outbox = self._outbox, []
                body = json.dumps(batch)
                self.bytes_out += len(body)
                async with self.http.post(
                        self.url + "/xhr_send", data=body, headers={"Content-Type": "text/plain"},
                        timeout=aiohttp.ClientTimeout(total=self.connect_timeout)) as response:
                    if response.status not in (200, 204):
                        raise SockJSError(f"xhr_send: HTTP {response.status}")
        except (aiohttp.ClientError, SockJSError, TimeoutError) as exc:
            self.send_error = f"{type(exc).__name__}: {exc}"[:200]
            self._outbox.clear()

    # --- closing -------------------------------------------------------------------------------

    def _finish(self, code: int | None, reason: str) -> None:
        if not self.closed:
            self.closed = True
            self.close_code = code
            self.close_reason = reason

    async def close(self) -> None:
        """Drop the session (SockJS has no client close frame: the server times it out)."""
        if self._sender is not None and not self._sender.done():
            # let the last POST (a `leave`) go out, briefly
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._sender, self.connect_timeout / 5)
        self._finish(self.close_code, self.close_reason or "closed by client")
        if self._ws is not None:
            await self._ws.close()
        if self._stream is not None:
            self._stream.close()
            self._stream = None

    @property
    def websocket(self) -> aiohttp.ClientWebSocketResponse | None:
        """The underlying websocket (the `websocket` transport only)."""
        return self._ws
