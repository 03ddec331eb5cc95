"""SockJS transports of a game node, on the `sockjs` 0.13 package with its faults fixed.

`add_sockjs_routes` serves `/play/info`, `/play/iframe*.html` and
`/play/{server}/{session}/{transport}` (websocket, xhr-streaming, xhr polling + xhr_send,
eventsource, htmlfile, jsonp + jsonp_send) and wraps each SockJS session in a
`SockJSConnection` for the node's `ConnectionHandler`. It never registers
`{prefix}/websocket`: that path is the node's binary raw websocket.

The package is used through its extension points only (subclassed session, manager, route
and transports); docs/sockjs.md lists each fault it has, the fix and the test proving it:

1. CORS: `_on_response_prepare` + `SockJSEndpoint._preflight` (info and the XHR family).
2. Concurrent/aborted polls: `_FixedStreaming.handle_session`, `SockJSEndpoint.handler`.
3. Abandoned sessions: `_Session.release` restarts the expiry clock; `SockJSManager` sweeps.
4. Unbounded queue: `_Session.send` refuses beyond `max_send_queue`.
5. Binary client frames: `_WebSocket.client` delivers them (`bytes`) to the handler.

Also: the node's close code reaches polling clients (`_FixedStreaming._drain`), `*_send`
bodies must be JSON arrays, JSESSIONID only with `cookie_needed`, `max_sessions`.
"""

from __future__ import annotations

import asyncio
import email.utils
import functools
import json
import logging
import re
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import unquote_plus

from aiohttp import WSCloseCode, WSMsgType, hdrs, web, web_ws
from multidict import MultiDict
from sockjs import Session, SessionManager, SessionState
from sockjs.exceptions import SessionIsClosed
from sockjs.protocol import ENCODING, MsgType, SockjsMessage, close_frame, loads
from sockjs.protocol import Frame as SockjsFrame
from sockjs.route import SockJSRoute
from sockjs.transports import (
    EventsourceTransport,
    HTMLFileTransport,
    JSONPolling,
    JSONPollingSend,
    WebSocketTransport,
    XHRSendTransport,
    XHRStreamingTransport,
    XHRTransport,
)
from sockjs.transports.base import HTTPClientClosedConnection
from sockjs.transports.utils import CACHE_CONTROL, cancel_tasks, session_cookie

from engine.codec import to_text

from .admission import Admission
from .connection import Connection, ConnectionHandler, Frame
from .websocket import (
    DIRECT_READ,
    OP_TEXT,
    ReasonedWebSocket,
    bound_reads,
    post_start_with_queue,
    stop_reading,
    ws_frame,
)

log = logging.getLogger(__name__)

__all__ = ["SockJSConnection", "SockJSManager", "add_sockjs_routes", "sockjs_text", "sockjs_ws_frame"]

SOCKJS_TEXT = "sockjs-text"  # Frame.rendered key: base64 msgpack (one SockJS message)
SOCKJS_WS = "sockjs-ws"  # Frame.rendered key: websocket text frame carrying `a["<base64>"]`
SOCKJS_CHUNK = "sockjs-chunk"  # Frame.rendered key: (HTTP chunk carrying `a["<base64>"]\n`, its body size)
DEFAULT_SOCKJS_URL = "https://cdn.jsdelivr.net/npm/sockjs-client@1/dist/sockjs.min.js"
ONE_YEAR = 365 * 24 * 3600
#: Transports whose responses carry CORS headers and that answer OPTIONS preflights
#: (SockJS 0.3: the XHR family and /info; the others work cross-origin via an iframe
#: or a script tag).
CORS_TRANSPORTS = {"xhr": "OPTIONS, POST", "xhr_send": "OPTIONS, POST",
                   "xhr_streaming": "OPTIONS, POST"}
#: Our `Connection.transport` name for each package transport name.
TRANSPORT_NAMES = {
    "websocket": "sockjs-websocket",
    "xhr-streaming": "xhr-streaming",
    "xhr-polling": "xhr-polling",
    "eventsource": "eventsource",
    "htmlfile": "htmlfile",
    "jsonp-polling": "jsonp",
}
_SOCKJS_REQUEST = web.RequestKey("arena_sockjs", tuple)  # (cors, cookie_needed)
_TRANSPORT_NAME = web.RequestKey("arena_sockjs_transport", str)
_OPEN = SessionState.OPEN


#: Messages one `xhr_send` body may carry (sockjs-client batches what is queued while a
#: send is in flight: a few inputs).
MESSAGES_PER_SEND = 16


def send_body_limit(max_message_bytes: int) -> int:
    """The largest `xhr_send` body of /play: `MESSAGES_PER_SEND` messages of
    `max_message_bytes`, base64 (4/3) and JSON-quoted, in one JSON array."""
    return 2 + MESSAGES_PER_SEND * (4 * -(-max_message_bytes // 3) + 3)


def sockjs_text(frame: Frame) -> str:
    """The frame as one SockJS message: base64 of its msgpack, rendered once per Frame."""
    return frame.rendered(SOCKJS_TEXT, to_text)


def _render_ws(payload: bytes) -> bytes:
    # Base64 needs no JSON escaping, so this quoting is exact.
    return ws_frame(OP_TEXT, b'a["' + to_text(payload).encode() + b'"]')


def _render_chunk(payload: bytes) -> tuple[bytes, int]:
    body = b'a["' + to_text(payload).encode() + b'"]\n'
    return b"%x\r\n" % len(body) + body + b"\r\n", len(body)


def sockjs_ws_frame(frame: Frame) -> bytes:
    """The complete websocket frame of the SockJS message frame `a["<base64>"]`, built once
    per Frame."""
    return frame.rendered(SOCKJS_WS, _render_ws)


# --------------------------------------------------------------------------- connection


class SockJSConnection(Connection):
    """One SockJS session seen by the node.

    Frames are queued in the session (bounded: `max_send_queue` messages), except on the
    websocket transport when nothing is queued: there the pre-rendered websocket frame is
    written as is to the socket (ordering is kept: a non-empty queue means "queue too").
    """

    __slots__ = ("session", "_tr", "_max", "_last_len", "_lost")

    def __init__(self, session: _Session, transport: str, remote: str, max_send_queue: int):
        self.session = session
        self.transport = transport
        self.remote = remote
        self.state = None
        self._tr: asyncio.Transport | None = None  # set while a SockJS websocket is open
        self._max = max_send_queue
        self._last_len = 64
        self._lost = False

    def send(self, frame: Frame) -> bool:
        tr = self._tr
        session = self.session
        if tr is not None and not session._queue:
            if session.state is not _OPEN or tr.is_closing():
                return False
            data = frame.rendered(SOCKJS_WS, _render_ws)
            n = self._last_len = len(data)
            # The limit is in frames: the bytes still buffered, counted in frames of this size.
            if tr.get_write_buffer_size() >= self._max * n:
                return False
            tr.write(data)
            return True
        stream = session.stream
        if stream is not None and not session._queue and session.state is _OPEN:
            sent = stream.write_direct(frame, self._max)
            if sent is not None:
                return sent
        return session.send(sockjs_text(frame))

    def send_text(self, text: str) -> bool:
        """Queue one raw SockJS text message (protocol-test endpoints; the game sends
        Frames). Same bound as `send`."""
        return self.session.send(text)

    def backlog(self) -> int:
        session = self.session
        queued = session.backlog()
        tr = self._tr
        if tr is not None and not tr.is_closing():
            queued += tr.get_write_buffer_size() // self._last_len
        elif session.stream is not None:
            queued += session.stream.backlog()
        return queued

    @property
    def closed(self) -> bool:
        return self._lost or self.session.state in (SessionState.CLOSING, SessionState.CLOSED)

    def close(self, code: int, reason: str) -> None:
        """The client gets `c[code,"reason"]` (a SockJS close frame), then the session ends."""
        try:
            self.session.close(code, reason)
        except Exception:  # never raise from close
            log.debug("close of %s failed", self.remote, exc_info=True)

    def __repr__(self) -> str:
        return f"<SockJSConnection {self.transport} {self.session.id} {self.remote}>"


# --------------------------------------------------------------------------- session


class _Session(Session):
    conn: SockJSConnection | None = None
    remote: str | None = None  # the creating request's address, while counted by Admission
    stream: _XHRStreaming | None = None  # the xhr-streaming request holding the session

    def __init__(self, session_id: str, *, max_send_queue: int, **kwargs: Any):
        super().__init__(session_id, **kwargs)
        self.max_send_queue = max_send_queue

    def backlog(self) -> int:
        """Messages queued and not yet handed to a transport."""
        return sum(len(p) for f, p in self._queue if f is SockjsFrame.MESSAGE)

    def send(self, msg: str) -> bool:
        """Fault 4: the package's queue is unbounded; refuse (False) at `max_send_queue`."""
        if self.state is not SessionState.OPEN or self.backlog() >= self.max_send_queue:
            return False
        self.feed(SockjsFrame.MESSAGE, msg)
        return True

    def release(self) -> None:
        """Fault 3: `acquire` clears `expires` and the package never sets it again, so a
        session nobody polls any more never expires. Restart the clock on release."""
        super().release()
        self.expires = datetime.now() + timedelta(seconds=self.disconnect_delay)


def _alive(request: web.Request | None) -> bool:
    tr = request.transport if request is not None else None
    return tr is not None and not tr.is_closing()


# --------------------------------------------------------------------------- manager


class SockJSManager(SessionManager):
    """The package's manager, adapted to a `ConnectionHandler`, with a cheap, frequent
    expiry sweep that also notices requests whose client went away (fault 2 and 3)."""

    def __init__(self, name: str, app: web.Application, handler: ConnectionHandler, *,
                 heartbeat_delay: float, disconnect_delay: float, max_send_queue: int):
        super().__init__(name, app, self._dispatch, heartbeat_delay, disconnect_delay)
        self.factory = functools.partial(_Session, max_send_queue=max_send_queue)
        self.connection_handler = handler
        self.max_send_queue = max_send_queue
        #: Seconds between two sweeps (the package sweeps every max(delay, 5) s).
        self.sweep_interval = min(1.0, max(0.05, disconnect_delay / 4))
        #: Per-address session accounting (/play), set by `add_sockjs_routes`.
        self.admission: Admission | None = None
        #: Set at shutdown: a polling response then carries every queued frame up to the
        #: close frame (the client's next poll could not reach a stopping node).
        self.draining = False

    def refuse(self, limit: str) -> None:
        if self.admission is not None:
            self.admission.refuse(limit)

    def forget(self, session: _Session) -> None:
        """`session` leaves `sessions`: its address's count goes down."""
        self.sessions.pop(session.id, None)
        remote, session.remote = session.remote, None
        if remote is not None and self.admission is not None:
            self.admission.session_closed(remote)

    # -- events from the package ------------------------------------------------------

    async def _dispatch(self, _manager: SessionManager, session: _Session,
                        msg: SockjsMessage) -> None:
        kind = msg.type
        if kind is MsgType.MESSAGE:
            conn = session.conn
            if conn is None or conn._lost or session.state is not SessionState.OPEN:
                return
            data = msg.data
            if not isinstance(data, str | bytes):  # a JSON value that is not a string
                data = json.dumps(data)
            self.connection_handler.message_received(conn, data)
        elif kind is MsgType.OPEN:
            request = session.request
            name = TRANSPORT_NAMES.get(request.get(_TRANSPORT_NAME, ""), "") if request else ""
            conn = SockJSConnection(session, name, (request.remote or "") if request else "",
                                    self.max_send_queue)
            session.conn = conn
            self.connection_handler.connection_made(conn)
        else:  # CLOSE (closing started) or CLOSED
            self._lost(session)

    async def remote_messages(self, session: Session, messages: Any) -> None:
        """`xhr_send`/`jsonp_send` bodies must be JSON arrays; the package iterated any
        value (a string became one message per character, a number a 500 with a logged
        traceback)."""
        if not isinstance(messages, list):
            raise web.HTTPInternalServerError(text="Broken JSON encoding.")
        await super().remote_messages(session, messages)

    def _lost(self, session: _Session) -> None:
        conn = session.conn
        if conn is not None and not conn._lost:
            conn._lost = True
            conn._tr = None
            try:
                self.connection_handler.connection_lost(conn)
            except Exception:
                log.exception("connection_lost handler failed for %r", conn)

    async def remote_closed(self, session: Session) -> None:
        """The package defers its CLOSED event by `disconnect_delay` (or forever, fault 3);
        the handler hears of the end at once (the session still answers `c[...]`)."""
        await super().remote_closed(session)
        self._lost(session)  # type: ignore[arg-type]

    async def interrupt(self, session: Session, exc: BaseException) -> None:
        """The client of the request holding `session` is gone: close the session as
        interrupted (later requests get `c[1002,...]`) and wake that request so it ends."""
        waiter = session._waiter
        await self.remote_close(session, exc=exc)
        await self.remote_closed(session)
        session._waiter = None
        if waiter is not None and not waiter.done():
            waiter.set_exception(exc)

    # -- expiry ---------------------------------------------------------------------------

    async def _gc_sessions_task(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_interval)
            try:
                await self._gc_expired_sessions()
            except Exception:
                log.exception("SockJS session sweep failed")

    async def _gc_expired_sessions(self) -> None:
        """One pass, no task per session (the package gathers one coroutine per session)."""
        now = datetime.now()
        for session in list(self.sessions.values()):
            if session.acquired and session.state is SessionState.OPEN \
                    and not _alive(session.request) and session._waiter is not None:
                await self.interrupt(session, ConnectionResetError("client went away"))
            expires = session.expires
            if expires is not None and expires <= now:
                await self._check_expiration(session)
                self.forget(session)


# --------------------------------------------------------------------------- transports


class _FixedStreaming:
    """`StreamingTransport.handle_session` with fault 2 fixed: a second request on a held
    session is refused without touching it, unless the holder's client is gone, in which
    case the session is closed as interrupted and this request gets `c[1002,...]`."""

    session: _Session
    manager: SockJSManager
    request: web.Request
    _send: Any  # the transport's framing writer

    async def handle_session(self) -> None:
        session, manager = self.session, self.manager
        if session.state is SessionState.OPEN and manager.is_acquired(session):
            if _alive(session.request):
                await self._send(close_frame(2010, "Another connection still open"))
                return
            await manager.interrupt(session, ConnectionResetError("previous request aborted"))
        elif session.state is SessionState.CLOSING and session._queue \
                and not session.interrupted and not manager.is_acquired(session):
            await self._drain()
            return
        await super().handle_session()  # type: ignore[misc]

    async def _drain(self) -> None:
        """A session the server closed while no request was open: deliver what was queued,
        up to its close frame (`c[code,"reason"]`). The package answers `c[3000,...]` at
        once instead, so a polling client never saw the node's close code."""
        session, manager = self.session, self.manager
        while session._queue:
            frame, text = await session.get_frame()
            if frame is SockjsFrame.CLOSE:
                await manager.remote_closed(session)
                await self._send(text)
                return
            if await self._send(text):
                return
        await self._send(close_frame(3000, "Go away!"))  # a concurrent request took the rest


class _XHR(_FixedStreaming, XHRTransport):
    async def _send(self, text: str) -> bool:
        stop = await super()._send(text)
        # Shutting down: the queued frames up to the close frame (`c[4030,...]`) go in this
        # response, one per line (sockjs-client reads each line as a frame).
        return stop and not self.manager.draining


class _XHRStreaming(_FixedStreaming, XHRStreamingTransport):
    """While this request holds its session, a frame sent when nothing is queued is
    written to the socket as one pre-rendered HTTP chunk (`write_direct`), shared by every
    xhr-streaming player of the room, instead of going through the session's queue, a task
    wake-up and aiohttp's `write` per frame (the per-frame cost of the package's loop).
    Its bytes count towards the response's `maxsize` as the loop's do; the frame that
    would pass it takes the queue, and the loop sends it and ends the response."""

    session: _Session
    last_len = 64  # bytes of the last chunk written directly

    async def handle_session(self) -> None:
        session, response = self.session, self.response
        direct = (session.stream is None and response is not None and not response.compression
                  and response.headers.get(hdrs.TRANSFER_ENCODING) == "chunked")
        if direct:
            session.stream = self
        try:
            await super().handle_session()
        finally:
            if session.stream is self:
                session.stream = None

    def write_direct(self, frame: Frame, max_frames: int) -> bool | None:
        """Write `frame` now: True, False (the client's backlog is at `max_frames` frames
        of this size: a slow client), or None when it must take the queue (this request
        does not hold the session, its socket is closing, or `maxsize` is reached)."""
        tr = self.request.transport
        if self.session.request is not self.request or tr is None or tr.is_closing():
            return None
        data, size = frame.rendered(SOCKJS_CHUNK, _render_chunk)
        if self.size + size > self.maxsize:
            return None
        n = self.last_len = len(data)
        # The limit is in frames: the bytes still buffered, counted in frames of this size.
        if tr.get_write_buffer_size() >= max_frames * n:
            return False
        tr.write(data)
        self.size += size
        return True

    def backlog(self) -> int:
        """Frames still in this response's socket buffer, in frames of the last size."""
        tr = self.request.transport
        return 0 if tr is None or tr.is_closing() else tr.get_write_buffer_size() // self.last_len


class _Eventsource(_FixedStreaming, EventsourceTransport):
    pass


class _HTMLFile(_FixedStreaming, HTMLFileTransport):
    pass


class _JSONP(_FixedStreaming, JSONPolling):
    pass


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None as soon as it is known to be longer than `limit`
    (`Content-Length`, or the bytes read so far): the rest is never read."""
    length = request.content_length
    if length is not None and length > limit:
        return None
    chunks: list[bytes] = []
    n = 0
    while True:
        chunk = await request.content.readany()
        if not chunk:
            return b"".join(chunks)
        n += len(chunk)
        if n > limit:
            return None
        chunks.append(chunk)


def refusal(status: int, text: str) -> web.Response:
    """An answer that also ends the connection: a body left unread is not drained."""
    response = web.Response(status=status, text=text)
    response.force_close()
    return response


def _jsessionid(request: web.Request) -> tuple:
    """The package's JSESSIONID header, built only when the endpoint sets the cookie
    (`cookie_needed`): `_on_response_prepare` would remove it again otherwise."""
    flags = request.get(_SOCKJS_REQUEST)
    return session_cookie(request) if flags is not None and flags[1] else ()


class _SendGuard:
    """`xhr_send` / `jsonp_send` checked before the body is read: a session that is
    unknown, closed or lost gets 404, a body above `max_body` bytes 413 (neither is read;
    the connection is closed), a sender over its budget 429 (`AdmissionHandler.
    send_request`: the unjoined budget, and the session's sends per second)."""

    max_body = 1 << 20
    session: _Session
    manager: SockJSManager
    request: web.Request

    async def guarded_body(self, limit: int) -> bytes | web.Response:
        session, manager = self.session, self.manager
        conn = session.conn
        if session.state is not _OPEN or conn is None or conn._lost:
            manager.refuse("sockjs_send_no_session")
            return refusal(404, "No such session")
        send_request = getattr(manager.connection_handler, "send_request", None)
        if send_request is not None and not send_request(conn):
            return refusal(429, "Too many sends")
        body = await read_body(self.request, limit)
        if body is None:
            manager.refuse("sockjs_send_body")
            return refusal(413, f"Body above {limit} bytes")
        return body


class _XHRSend(_SendGuard, XHRSendTransport):
    async def process(self) -> web.StreamResponse:
        request = self.request
        if request.method not in (hdrs.METH_GET, hdrs.METH_POST):
            return await super().process()
        body = await self.guarded_body(self.max_body)
        if isinstance(body, web.StreamResponse):
            return body
        if not body:
            raise web.HTTPInternalServerError(text="Payload expected.")
        try:
            messages = loads(body.decode(ENCODING))
        except Exception:
            raise web.HTTPInternalServerError(text="Broken JSON encoding.") from None
        await self.manager.remote_messages(self.session, messages)
        headers = [(hdrs.CONTENT_TYPE, "text/plain; charset=UTF-8"),
                   (hdrs.CACHE_CONTROL, CACHE_CONTROL), *_jsessionid(request)]
        return web.Response(status=204, headers=MultiDict(headers))


class _JSONPSend(_SendGuard, _FixedStreaming, JSONPollingSend):
    async def process(self) -> web.StreamResponse:
        request = self.request
        if request.method != hdrs.METH_POST:
            return await super().process()
        form = request.content_type.lower() == "application/x-www-form-urlencoded"
        body = await self.guarded_body(3 * self.max_body if form else self.max_body)
        if isinstance(body, web.StreamResponse):
            return body
        if form:
            if not body.startswith(b"d="):
                raise web.HTTPInternalServerError(text="Payload expected.")
            text = unquote_plus(body[2:].decode(ENCODING))
        else:
            text = body.decode(ENCODING)
        if not text:
            raise web.HTTPInternalServerError(text="Payload expected.")
        try:
            messages = loads(text)
        except Exception:
            raise web.HTTPInternalServerError(text="Broken JSON encoding.") from None
        await self.manager.remote_messages(self.session, messages)
        headers = [(hdrs.CONTENT_TYPE, "text/plain;charset=UTF-8"),
                   (hdrs.CACHE_CONTROL, CACHE_CONTROL), *_jsessionid(request)]
        return web.Response(body=b"ok", headers=MultiDict(headers))


#: A SockJS websocket text frame carrying one message of base64 (what every client of
#: /play sends): JSON needs no decoding for it, the message is the text between the quotes.
_ONE_BASE64_MESSAGE = re.compile(r'\["[A-Za-z0-9+/]*={0,2}"\]').fullmatch
_WS_TEXT = WSMsgType.TEXT


class _DirectQueue(web_ws.WebSocketDataQueue if DIRECT_READ else object):  # type: ignore[misc]
    """aiohttp's queue of parsed websocket messages (as `websocket.DirectQueue` for the raw
    websocket): a text frame of one base64 message reaches the handler from the transport's
    `data_received` (`_WebSocket.direct`): no future, no task wake-up, no JSON decoding, no
    coroutine chain of the package per message. Everything else (other frames, control
    frames, close, errors, any message while the queue holds one, so the order is kept)
    goes through the queue to `_WebSocket.client` as before."""

    __slots__ = ("sockjs",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.sockjs: _WebSocket | None = None

    def feed_data(self, data: Any, size: int) -> None:
        t = self.sockjs
        if t is not None and not self._buffer and data[0] is _WS_TEXT \
                and _ONE_BASE64_MESSAGE(data[1]) and t.direct(data[1][2:-2]):
            return
        super().feed_data(data, size)  # type: ignore[misc]


class _SockJSWebSocket(ReasonedWebSocket):
    def _post_start(self, request, protocol, writer) -> None:  # type: ignore[no-untyped-def]
        """aiohttp's, with a `_DirectQueue` as the parser's queue (DIRECT_READ)."""
        post_start_with_queue(functools.partial(super()._post_start, request, protocol, writer),
                              _DirectQueue)


class _WebSocket(WebSocketTransport):
    """The SockJS websocket transport: uncompressed, bounded frames, binary frames
    delivered (fault 5), pre-rendered frames written directly (see SockJSConnection),
    messages read directly (`_DirectQueue`)."""

    max_frame_bytes = 64 * 1024
    close_timeout = 2.0
    _tick_at = 0.0  # monotonic time of the next session.tick() the direct read does

    def direct(self, message: str) -> bool:
        """One message from `data_received`, as `client` would deliver it (False: not
        here, the read loop takes it). The session's heartbeat clock is moved at most once
        a second (`session.tick()`, a datetime computation the package did per message)."""
        session = self.session
        conn = session.conn
        if conn is None or conn._lost or session.state is not _OPEN:
            return False
        if self._wait_pong_task is not None:
            self._pong_event.set()
        now = time.monotonic()
        if now >= self._tick_at:
            self._tick_at = now + 1.0
            session.tick()
        try:
            self.manager.connection_handler.message_received(conn, message)
        except Exception:  # as the package's remote_message: never break the read
            log.exception("Exception in message handler.")
        return True

    async def process(self) -> web.StreamResponse:
        request, session, manager = self.request, self.session, self.manager
        if request.method != hdrs.METH_GET:
            # SockJS: 405 with `Allow` and no body (the package's way warns in aiohttp 3.14).
            return web.Response(status=405, headers={hdrs.ALLOW: hdrs.METH_GET})
        ws = _SockJSWebSocket(autoping=False, compress=False,
                              max_msg_size=self.max_frame_bytes, timeout=self.close_timeout)
        await ws.prepare(request)
        if session.interrupted:
            await ws.send_str(close_frame(1002, "Connection interrupted"))
            await ws.close()
            return ws
        if session.state is not SessionState.NEW:
            await ws.send_str(close_frame(3000, "Go away!"))
            await ws.close()
            return ws
        bound_reads(request.transport)
        await manager.acquire(session, request)
        conn = session.conn
        if conn is not None and session.state is SessionState.OPEN:
            conn._tr = request.transport
        queue = ws._reader
        if isinstance(queue, _DirectQueue):
            queue.sockjs = self
        server = asyncio.ensure_future(self.server(ws))
        client = asyncio.ensure_future(self.client(ws))
        try:
            await asyncio.wait((server, client), return_when=asyncio.FIRST_COMPLETED)
        finally:
            if isinstance(queue, _DirectQueue):
                queue.sockjs = None
            if conn is not None:
                conn._tr = None
            # The connection ended: the handler hears it now, not after disconnect_delay.
            await manager.remote_close(session)
            await manager.remote_closed(session)
            session.expire()
            await manager.release(session)
            await cancel_tasks(server, client, self._wait_pong_task)
            if not ws.closed:
                # From this task (the reader is cancelled) aiohttp sends its close frame,
                # then reads until the client's reply (`close_timeout`). Its drain has no
                # bound: a client that reads nothing is aborted (it sees 1006).
                try:
                    await asyncio.wait_for(ws.close(), 2 * self.close_timeout)
                except TimeoutError:
                    if request.transport is not None:
                        request.transport.abort()
        return ws

    async def server(self, ws: web.WebSocketResponse) -> None:
        """The package's writer loop, except after the SockJS close frame: the package
        called `ws.close()` here, which (another task reading) makes aiohttp close the
        socket at once; the client's messages still in flight then meet a closed socket,
        Linux answers with a reset and the client can lose the close frame (1006).
        Returning instead lets `process` close with the handshake. The sweep's `interrupt`
        (the client is gone) wakes the wait with a ConnectionResetError: that ends it too
        (the package's `cancel_tasks` skips a finished task, whose error nobody would read)."""
        while True:
            try:
                frame, data = await self.session.get_frame()
            except (SessionIsClosed, ConnectionResetError):
                return
            if frame == SockjsFrame.HEARTBEAT:
                await ws.ping()
                if self._wait_pong_task is None:
                    self._wait_pong_task = asyncio.create_task(self._wait_pong())
                    self._wait_pong_task.add_done_callback(self._wait_done_callback)
                continue
            await ws.send_str(data)
            if frame == SockjsFrame.CLOSE:
                return

    async def client(self, ws: web.WebSocketResponse) -> None:
        manager, session = self.manager, self.session
        while True:
            msg = await ws.receive()
            if self._wait_pong_task is not None:
                self._pong_event.set()
            kind = msg.type
            if kind is WSMsgType.TEXT:
                if not msg.data:
                    continue  # SockJS: empty frames are ignored
                try:
                    value = loads(msg.data)
                except ValueError as exc:
                    await manager.remote_close(session, exc)
                    await manager.remote_closed(session)
                    await ws.close(code=WSCloseCode.PROTOCOL_ERROR, message=b"Broken JSON encoding")
                    break
                if isinstance(value, list):
                    await manager.remote_messages(session, value)
                else:
                    await manager.remote_message(session, value)
            elif kind is WSMsgType.BINARY:
                # Fault 5: the package drops these silently. SockJS framing has no binary
                # messages; a binary frame is taken as one msgpack message, as on the raw
                # websocket, and reaches the handler as `bytes`.
                await manager.remote_message(session, msg.data)
            elif kind is WSMsgType.PONG or kind is WSMsgType.PING:
                # Control frames share the connection's budget (AdmissionHandler): past
                # it the session is closed (4004) and the socket no longer read.
                control_frame = getattr(manager.connection_handler, "control_frame", None)
                conn = session.conn
                if control_frame is not None and conn is not None \
                        and not control_frame(conn):
                    await stop_reading(self.request.transport, self.close_timeout)
                    break
                if kind is WSMsgType.PING:
                    await ws.pong(msg.data)
                session.tick()
            elif kind is WSMsgType.CLOSE:
                await manager.remote_close(session)
            else:  # CLOSING, CLOSED, ERROR (a frame above max_frame_bytes: 1009)
                if ws.close_code == 1009 and manager.admission is not None:
                    manager.admission.refuse("frame_size")
                await manager.remote_closed(session)
                break


TRANSPORTS: dict[str, type] = {
    "websocket": _WebSocket,
    "xhr": _XHR,
    "xhr_send": _XHRSend,
    "xhr_streaming": _XHRStreaming,
    "jsonp": _JSONP,
    "jsonp_send": _JSONPSend,
    "htmlfile": _HTMLFile,
    "eventsource": _Eventsource,
}


# --------------------------------------------------------------------------- raw websocket


class RawTextConnection(Connection):
    """A client of SockJS's raw websocket (`{prefix}/websocket` of the protocol-test
    endpoints): each text frame is one message, sent back as text."""

    transport = "raw-websocket"

    def __init__(self, remote: str):
        self.remote = remote
        self.state = None
        self.pending: list[str] = []
        self.closing: tuple[int, str] | None = None

    def send(self, frame: Frame) -> bool:
        return self.send_text(sockjs_text(frame))

    def send_text(self, text: str) -> bool:
        if self.closing is not None:
            return False
        self.pending.append(text)
        return True

    def close(self, code: int, reason: str) -> None:
        if self.closing is None:
            self.closing = (code, reason)

    @property
    def closed(self) -> bool:
        return self.closing is not None

    def backlog(self) -> int:
        return len(self.pending)


def raw_text_websocket(handler: ConnectionHandler, max_frame_bytes: int):
    async def route(request: web.Request) -> web.StreamResponse:
        ws = ReasonedWebSocket(compress=False, max_msg_size=max_frame_bytes)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="Can \"Upgrade\" only to \"WebSocket\".")
        await ws.prepare(request)
        conn = RawTextConnection(request.remote or "")
        handler.connection_made(conn)
        try:
            while True:
                while conn.pending:
                    await ws.send_str(conn.pending.pop(0))
                if conn.closing is not None:
                    code, reason = conn.closing
                    await ws.close(code=code, message=reason.encode())
                    break
                msg = await ws.receive()
                if msg.type is WSMsgType.TEXT or msg.type is WSMsgType.BINARY:
                    handler.message_received(conn, msg.data)
                else:
                    break
        finally:
            handler.connection_lost(conn)
        return ws

    return route


# --------------------------------------------------------------------------- routes


def _cors_headers(request: web.Request) -> list[tuple[str, str]]:
    # The Origin echoed, `null` included (a file:// or sandboxed page: SockJS 0.3 echoes
    # it, and `*` is refused with credentials); `*` when there is none.
    origin = request.headers.get(hdrs.ORIGIN) or "*"
    headers = [(hdrs.ACCESS_CONTROL_ALLOW_ORIGIN, origin),
               (hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS, "true")]
    asked = request.headers.get(hdrs.ACCESS_CONTROL_REQUEST_HEADERS)
    if asked:
        headers.append((hdrs.ACCESS_CONTROL_ALLOW_HEADERS, asked))
    return headers


async def _on_response_prepare(request: web.Request, response: web.StreamResponse) -> None:
    """Fault 1 (CORS) and the JSESSIONID cookie, applied to every response of a SockJS
    route, including streaming ones and errors, just before its headers go out."""
    flags = request.get(_SOCKJS_REQUEST)
    if flags is None:
        return
    cors, cookie_needed = flags
    headers = response.headers
    if not cookie_needed:  # the package sets JSESSIONID always; SockJS only when asked
        headers.popall(hdrs.SET_COOKIE, None)
    if cors:
        for key, value in _cors_headers(request):
            headers[key] = value
        if hdrs.VARY not in headers:
            headers[hdrs.VARY] = "Origin"


class SockJSEndpoint(SockJSRoute):
    """The package's route with the transport dispatch fixed (faults 1, 2)."""

    def __init__(self, name: str, manager: SockJSManager, sockjs_url: str,
                 disable_transports: Iterable[str], cookie_needed: bool, *,
                 response_limit: int, max_frame_bytes: int, max_sessions: int,
                 max_send_body: int, min_session_id: int):
        super().__init__(name, manager, sockjs_url, TRANSPORTS, disable_transports,
                         cookie_needed)
        self.response_limit = response_limit
        self.max_frame_bytes = max_frame_bytes
        self.max_sessions = max_sessions
        self.max_send_body = max_send_body
        self.min_session_id = min_session_id

    def _preflight(self, request: web.Request, methods: str) -> web.Response:
        headers = [
            (hdrs.ACCESS_CONTROL_ALLOW_METHODS, methods),
            (hdrs.ACCESS_CONTROL_MAX_AGE, str(ONE_YEAR)),
            (hdrs.CACHE_CONTROL, f"public, max-age={ONE_YEAR}"),
            (hdrs.EXPIRES, email.utils.formatdate(time.time() + ONE_YEAR, usegmt=True)),
        ]
        if self.cookie_needed:
            headers.extend(session_cookie(request))
        return web.Response(status=204, headers=headers)  # CORS: _on_response_prepare

    async def info(self, request: web.Request) -> web.StreamResponse:
        request[_SOCKJS_REQUEST] = (True, self.cookie_needed)
        if request.method == hdrs.METH_OPTIONS:
            return self._preflight(request, "OPTIONS, GET")
        return await super().info(request)

    async def handler(self, request: web.Request) -> web.StreamResponse:
        info = request.match_info
        t_id = info["transport"]
        transport_class = self.handlers.get(t_id)
        if transport_class is None or transport_class.name in self.disable_transports:
            raise web.HTTPNotFound()
        request[_SOCKJS_REQUEST] = (t_id in CORS_TRANSPORTS, self.cookie_needed)
        if request.method == hdrs.METH_OPTIONS:
            if t_id in CORS_TRANSPORTS:
                return self._preflight(request, CORS_TRANSPORTS[t_id])
            raise web.HTTPMethodNotAllowed(hdrs.METH_OPTIONS, [hdrs.METH_GET, hdrs.METH_POST])

        manager = self.manager
        if not manager.started:
            manager.start()
        sid = info["session"]
        if not sid or "." in sid or "." in info["server"]:
            raise web.HTTPNotFound()
        if len(sid) < self.min_session_id:
            manager.refuse("sockjs_session_id")
            return web.Response(status=400, text=f"Session id shorter than "
                                                 f"{self.min_session_id} characters")
        new = transport_class.create_session and sid not in manager.sessions
        admission = manager.admission
        remote = request.remote or ""
        if admission is not None:
            if new:
                refused = admission.may_open_session(remote, len(manager.sessions))
                if refused is not None:
                    return refusal(*refused)
        elif (new or transport_class is _WebSocket) and len(manager.sessions) >= self.max_sessions:
            raise web.HTTPServiceUnavailable(text="Too many sessions")
        try:
            session = transport_class.get_session(manager, sid)
        except KeyError:
            if issubclass(transport_class, _SendGuard):  # its body is not read
                manager.refuse("sockjs_send_no_session")
                return refusal(404, "No such session")
            raise web.HTTPNotFound(headers=session_cookie(request)) from None
        if new and admission is not None and session.remote is None:
            session.remote = remote
            admission.session_opened(remote)

        request[_TRANSPORT_NAME] = transport_class.name
        transport = transport_class(manager, session, request)
        if getattr(transport, "maxsize", 0):
            transport.maxsize = self.response_limit  # streaming: close after this many bytes
        if isinstance(transport, _WebSocket):
            transport.max_frame_bytes = self.max_frame_bytes
        elif isinstance(transport, _SendGuard):
            transport.max_body = self.max_send_body
        # Fault 2: the package's handler closed the session in a `finally` whenever it was
        # acquired, even by *another* request (the one a 2010 refusal protects). A transport
        # releases what it acquired itself, so nothing is done to the session here.
        try:
            return await transport.process()
        except (ConnectionError, HTTPClientClosedConnection):
            response = getattr(transport, "response", None)
            if response is not None:  # the client went away mid-response
                return response
            raise
        except (asyncio.CancelledError, web.HTTPException):
            raise
        except UnicodeDecodeError:  # a *_send body that is not UTF-8
            raise web.HTTPInternalServerError(text="Broken JSON encoding.") from None
        except Exception:
            log.exception("SockJS transport %s failed", t_id)
            raise web.HTTPInternalServerError() from None


def add_sockjs_routes(
    app: web.Application,
    handler: ConnectionHandler,
    *,
    prefix: str = "/play",
    name: str = "play",
    disconnect_delay: float = 5.0,
    heartbeat_delay: float = 25.0,
    max_send_queue: int = 32,
    response_limit: int = 128 * 1024,
    cookie_needed: bool = False,
    disable_transports: tuple[str, ...] = (),
    sockjs_url: str | None = None,
    max_frame_bytes: int = 64 * 1024,
    max_sessions: int = 10_000,
    max_send_body: int = 1 << 20,
    min_session_id: int = 1,
    admission: Admission | None = None,
    raw_websocket: bool = False,
) -> SockJSManager:
    """Serve SockJS under `prefix` for `handler`; returns the session manager.

    - `disconnect_delay`: seconds a session lives without a receiving request (then the
      handler gets `connection_lost`); `heartbeat_delay`: seconds between `h` frames
      (websocket: pings).
    - `max_send_queue`: messages queued per session before `send` returns False.
    - `response_limit`: bytes after which a streaming response is ended (the client
      reopens it; this frees its memory).
    - `disable_transports`: package transport names ("websocket", "xhr-streaming", ...).
    - `max_frame_bytes`: largest websocket frame accepted from a client (above: close 1009).
      HTTP bodies (xhr_send, jsonp_send) are bounded by the app's `client_max_size`.
    - `max_sessions`: live sessions (open or not yet expired) on this endpoint; a request
      that would open one more gets 503 (with `admission`: its `sockjs_max_sessions`, the
      per-address cap and the reserve instead).
    - `max_send_body`: largest `xhr_send` body (a `jsonp_send` form 3x), else 413 unread.
    - `min_session_id`: shorter session ids get 400 (a session id is a bearer secret).
    - `raw_websocket`: also serve `{prefix}/websocket`, SockJS's raw websocket (text
      messages as they are; the node's `/play` has its binary one there instead).
    """
    manager = SockJSManager(name, app, handler, heartbeat_delay=heartbeat_delay,
                            disconnect_delay=disconnect_delay, max_send_queue=max_send_queue)
    manager.admission = admission
    route = SockJSEndpoint(name, manager, sockjs_url or DEFAULT_SOCKJS_URL, disable_transports,
                           cookie_needed, response_limit=response_limit,
                           max_frame_bytes=max_frame_bytes, max_sessions=max_sessions,
                           max_send_body=max_send_body, min_session_id=min_session_id)
    prefix = prefix.rstrip("/")
    router = app.router
    if raw_websocket and "websocket" not in disable_transports:
        router.add_get(prefix + "/websocket", raw_text_websocket(handler, max_frame_bytes))
    router.add_get(prefix, route.greeting)
    router.add_get(prefix + "/", route.greeting)
    router.add_route(hdrs.METH_GET, prefix + "/info", route.info)
    router.add_route(hdrs.METH_OPTIONS, prefix + "/info", route.info)
    router.add_get(prefix + "/iframe.html", route.iframe)
    router.add_get(prefix + "/iframe{version}.html", route.iframe)
    router.add_route("*", prefix + "/{server}/{session}/{transport}", route.handler)
    app.on_cleanup.append(manager.stop)
    if _on_response_prepare not in app.on_response_prepare:
        app.on_response_prepare.append(_on_response_prepare)
    return manager
