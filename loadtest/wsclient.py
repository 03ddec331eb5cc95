"""A lean websocket client for the bots (RFC 6455, client side, no extensions).

A bot needs binary (and text) messages, ping/pong and the close handshake, nothing else,
so this is one `asyncio.Protocol` that parses frames straight from `data_received` and
writes each frame with one `transport.write`: no reader task, no message queue of
futures, no per-frame coroutine. What aiohttp's client costs per message (its reader,
`receive()`'s future, `send_bytes`' drain) was most of a bot's CPU.

Rules kept (a server that breaks them gets the close code a browser would send):
masked server frames, reserved bits, unknown opcodes, fragmented or long (> 125 bytes)
control frames, a continuation without a start, a new message inside a fragmented one:
1002; invalid UTF-8 in a text message: 1007; a message over `max_msg_size`: 1009.
Every client frame is masked with a fresh 32-bit key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import random
import struct
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
MAX_HANDSHAKE_BYTES = 16384   # the server's 101 response head
CLOSE_TIMEOUT = 2.0           # seconds `close()` waits for the server's close frame and FIN

_rng = random.Random(os.urandom(16))  # mask keys: fresh per frame, not secrets
_getrandbits = _rng.getrandbits
_pack_short = struct.Struct("!BBH").pack
_pack_long = struct.Struct("!BBQ").pack
_from_bytes = int.from_bytes


class WebSocketError(Exception):
    """The handshake failed or the connection is closed."""


def mask(key: bytes, payload: bytes) -> bytes:
    """`payload` XOR the repeated 4-byte `key` (RFC 6455 5.3), as one big-int XOR."""
    n = len(payload)
    if not n:
        return b""
    stream = (key * ((n + 3) >> 2))[:n]
    return (_from_bytes(payload, "little") ^ _from_bytes(stream, "little")).to_bytes(n, "little")


_SMALL = 126
_REPEAT = [sum(1 << (32 * w) for w in range((n + 3) >> 2)) for n in range(_SMALL)]  # key -> key key key...
_LOW = [(1 << (8 * n)) - 1 for n in range(_SMALL)]
_SMALL_HEADS = [bytes((0x80 | OP_BINARY, 0x80 | n)) for n in range(_SMALL)]  # fin, binary, masked, n


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """One masked client frame."""
    n = len(payload)
    b0 = (0x80 if fin else 0) | opcode
    if n < _SMALL:  # inputs, pings: the key as an int, the whole mask as one big-int XOR
        key = _getrandbits(32)
        masked = (_from_bytes(payload, "little") ^ key * _REPEAT[n]) & _LOW[n]
        return bytes((b0, 0x80 | n)) + key.to_bytes(4, "little") + masked.to_bytes(n, "little")
    key_bytes = _getrandbits(32).to_bytes(4, "little")
    head = _pack_short(b0, 0xFE, n) if n < 65536 else _pack_long(b0, 0xFF, n)
    return head + key_bytes + mask(key_bytes, payload)


class WSClient(asyncio.Protocol):
    """One client connection. `connect()`, then `recv()` (a message, or None once closed),
    `send_bytes()` (synchronous: one write), `close()`. Or, instead of `recv()`,
    `listen(on_message, on_done)`: every message is handed to `on_message` as it is parsed
    (no future, no task wake-up per message), and `on_done()` is called once no message
    will come any more."""

    def __init__(self, max_msg_size: int = 1 << 20):
        self.max_msg_size = max_msg_size
        self.transport: asyncio.Transport | None = None
        self.close_code: int | None = None   # from the server's close frame (or ours on error)
        self.close_reason = ""
        self.bytes_in = 0     # message payload bytes, both ways
        self.bytes_out = 0
        self._buf = b""
        self._handshake: asyncio.Future | None = None
        self._head = b""
        self._fragments: list[bytes] | None = None
        self._fragment_op = 0
        self._fragment_size = 0
        self._messages: deque = deque()
        self._waiter: asyncio.Future | None = None
        self._closing = False             # we sent a close frame
        self._closed: asyncio.Future | None = None   # set when the TCP connection is gone
        self._lost = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._on_message: Callable[[bytes | str], object] | None = None
        self._on_done: Callable[[], object] | None = None

    # --- opening ---------------------------------------------------------------------------

    @classmethod
    async def connect(cls, url: str, *, max_msg_size: int = 1 << 20) -> WSClient:
        """Open `url` (ws:// or wss://host:port/path): TCP, then the upgrade (callers bound it with a
        timeout). Raises WebSocketError or OSError."""
        parts = urlsplit(url)
        if parts.scheme not in ("ws", "wss") or not parts.hostname:
            raise WebSocketError(f"unsupported websocket URL {url!r}")
        loop = asyncio.get_running_loop()
        client = cls(max_msg_size)
        client._loop = loop
        client._handshake = loop.create_future()
        client._closed = loop.create_future()
        tls = parts.scheme == "wss"
        await loop.create_connection(lambda: client, parts.hostname, parts.port or (443 if tls else 80),
                                     ssl=True if tls else None)
        key = base64.b64encode(os.urandom(16))
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        host = parts.netloc.encode()
        assert client.transport is not None
        client.transport.write(
            b"GET " + path.encode() + b" HTTP/1.1\r\nHost: " + host + b"\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
        try:
            head = await client._handshake
        except BaseException:
            client.transport.abort()
            raise
        lines = head.split(b"\r\n")
        status = lines[0].split(b" ", 2)
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if len(status) < 2 or status[1] != b"101":
            client.transport.abort()
            raise WebSocketError(f"handshake: HTTP {status[1].decode(errors='replace') if len(status) > 1 else '?'}")
        if (headers.get(b"upgrade", b"").lower() != b"websocket" or headers.get(b"sec-websocket-accept") != accept
                or headers.get(b"sec-websocket-extensions")):
            client.transport.abort()
            raise WebSocketError("handshake: bad upgrade response")
        if client._buf:  # frames that came with the response head
            data, client._buf = client._buf, b""
            client._feed(data)
        return client

    # --- asyncio.Protocol ------------------------------------------------------------------

    def connection_made(self, transport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        on_message = self._on_message
        if on_message is not None and not self._buf and len(data) > 3 and data[0] == 0x82:
            # the usual read: exactly one whole unfragmented binary frame (a state patch)
            n = data[1]
            start = 2
            if n == 126:
                n, start = (data[2] << 8) | data[3], 4
            if (n < 126 or start == 4) and len(data) == start + n and n <= self.max_msg_size:
                self.bytes_in += n
                on_message(data[start:])
                return
        hs = self._handshake
        if hs is not None:
            self._head += data
            end = self._head.find(b"\r\n\r\n")
            if end < 0:
                if len(self._head) > MAX_HANDSHAKE_BYTES and not hs.done():
                    hs.set_exception(WebSocketError("handshake: response head too large"))
                return
            self._handshake = None
            self._buf, head, self._head = self._head[end + 4:], self._head[:end], b""
            if not hs.done():
                hs.set_result(head)
            return
        self._feed(data)

    def connection_lost(self, exc) -> None:
        self._lost = True
        if exc is not None and not self.close_reason:
            self.close_reason = f"{type(exc).__name__}: {exc}"
        hs = self._handshake
        if hs is not None and not hs.done():
            hs.set_exception(WebSocketError("handshake: connection closed"))
        if self._closed is not None and not self._closed.done():
            self._closed.set_result(None)
        self._wake()

    # --- frames in ------------------------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        buf = self._buf + data if self._buf else data
        pos, end = 0, len(buf)
        while end - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            n = b1 & 0x7F
            start = pos + 2
            if n == 126:
                if end - start < 2:
                    break
                n = _from_bytes(buf[start:start + 2], "big")
                start += 2
            elif n == 127:
                if end - start < 8:
                    break
                n = _from_bytes(buf[start:start + 8], "big")
                start += 8
            if b1 & 0x80 or b0 & 0x70:
                return self._fail(1002, "masked or reserved-bit frame from the server")
            if n > self.max_msg_size:
                return self._fail(1009, "message too big")
            if end - start < n:
                break
            pos = start + n
            self._frame(b0, buf[start:pos])
            if self.transport is None or self._lost:
                return
        self._buf = buf[pos:] if pos < end else b""

    def _frame(self, b0: int, payload: bytes) -> None:
        opcode = b0 & 0x0F
        fin = b0 & 0x80
        if opcode in (OP_BINARY, OP_TEXT):
            if self._fragments is not None:
                return self._fail(1002, "new message inside a fragmented one")
            if fin:
                return self._deliver(opcode, payload)
            self._fragments, self._fragment_op, self._fragment_size = [payload], opcode, len(payload)
        elif opcode == OP_CONT:
            if self._fragments is None:
                return self._fail(1002, "continuation without a start")
            self._fragment_size += len(payload)
            if self._fragment_size > self.max_msg_size:
                return self._fail(1009, "message too big")
            self._fragments.append(payload)
            if fin:
                parts, self._fragments = self._fragments, None
                self._deliver(self._fragment_op, b"".join(parts))
        elif opcode >= 8:
            if not fin or len(payload) > 125:
                return self._fail(1002, "fragmented or long control frame")
            if opcode == OP_PING:
                self._write(OP_PONG, payload)
            elif opcode == OP_CLOSE:
                self._on_close_frame(payload)
            elif opcode != OP_PONG:
                return self._fail(1002, f"unknown opcode {opcode}")
        else:
            return self._fail(1002, f"unknown opcode {opcode}")

    def _deliver(self, opcode: int, payload: bytes) -> None:
        self.bytes_in += len(payload)
        if opcode == OP_TEXT:
            try:
                message: bytes | str = payload.decode("utf-8")
            except UnicodeDecodeError:
                return self._fail(1007, "invalid UTF-8 in a text message")
        else:
            message = payload
        if self._on_message is not None:
            self._on_message(message)
            return
        self._messages.append(message)
        self._wake()

    def _on_close_frame(self, payload: bytes) -> None:
        if len(payload) >= 2:
            code = _from_bytes(payload[:2], "big")
            self.close_code, self.close_reason = code, payload[2:].decode("utf-8", "replace")
        else:
            code, self.close_code = 1000, 1005  # no status: RFC 6455 7.1.5
        if not self._closing:  # echo it (RFC 6455 5.5.1), then the server closes TCP
            self._closing = True
            self._write(OP_CLOSE, payload[:2])
        self._wake()

    def _fail(self, code: int, reason: str) -> None:
        """A protocol error: send the close code, stop reading, drop the connection."""
        if self.close_code is None:
            self.close_code, self.close_reason = code, reason
        if not self._closing:
            self._closing = True
            self._write(OP_CLOSE, code.to_bytes(2, "big") + reason.encode()[:120])
        if self.transport is not None:
            self.transport.close()
        self._messages.clear()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None:
            self._waiter = None
            if not waiter.done():
                waiter.set_result(None)
        on_done = self._on_done
        if on_done is not None and self.done:
            self._on_done = None
            on_done()

    # --- the bot's side ----------------------------------------------------------------------------

    @property
    def done(self) -> bool:
        """No message will come any more (closed either way)."""
        return self._lost or (self._closing and self.close_code is not None)

    def listen(self, on_message: Callable[[bytes | str], object] | None,
               on_done: Callable[[], object] | None = None) -> None:
        """Hand every message to `on_message` from now on (the queued ones first, in
        order), and call `on_done()` once when the connection is done (at once if it is).
        `listen(None)` goes back to the `recv()` queue."""
        self._on_message, self._on_done = on_message, on_done
        while on_message is not None and self._messages and self._on_message is on_message:
            on_message(self._messages.popleft())
        if on_done is not None and self.done and self._on_done is on_done:
            self._on_done = None
            on_done()

    async def recv(self) -> bytes | str | None:
        """The next message, or None once the connection is closed."""
        while not self._messages:
            if self.done:
                return None
            self._waiter = (self._loop or asyncio.get_running_loop()).create_future()
            await self._waiter
        return self._messages.popleft()

    def _write(self, opcode: int, payload: bytes) -> None:
        transport = self.transport
        if transport is None or self._lost or transport.is_closing():
            raise ConnectionResetError("websocket closed")
        transport.write(frame(opcode, payload))

    def send_bytes(self, payload: bytes) -> None:
        """One binary frame, written at once. A small one (an input: 20 a second per bot)
        is masked and written here, the same bytes as `frame` makes, without its calls:
        the key and the masked payload as one little-endian int (key in the low 32 bits)."""
        n = len(payload)
        transport = self.transport
        if n < _SMALL and not self._closing and not self._lost and transport is not None \
                and not transport.is_closing():
            self.bytes_out += n
            key = _getrandbits(32)
            masked = (_from_bytes(payload, "little") ^ key * _REPEAT[n]) & _LOW[n]
            transport.write(_SMALL_HEADS[n] + (masked << 32 | key).to_bytes(n + 4, "little"))
            return
        if self._closing:
            raise ConnectionResetError("websocket closing")
        self.bytes_out += n
        self._write(OP_BINARY, payload)

    def send_text(self, text: str) -> None:
        if self._closing:
            raise ConnectionResetError("websocket closing")
        payload = text.encode()
        self.bytes_out += len(payload)
        self._write(OP_TEXT, payload)

    def ping(self, payload: bytes = b"") -> None:
        self._write(OP_PING, payload)

    async def close(self, code: int = 1000) -> None:
        """The close handshake: our close frame, the server's, then its FIN (at most
        CLOSE_TIMEOUT s, then the connection is dropped)."""
        transport = self.transport
        if transport is None or self._lost:
            return
        if not self._closing:
            self._closing = True
            with contextlib.suppress(ConnectionError):
                self._write(OP_CLOSE, code.to_bytes(2, "big"))
        assert self._closed is not None
        try:
            await asyncio.wait_for(asyncio.shield(self._closed), CLOSE_TIMEOUT)
        except TimeoutError:
            pass
        finally:
            if not self._lost:
                transport.close()
