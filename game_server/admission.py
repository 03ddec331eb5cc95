"""Per-address admission: one client address cannot starve the node's other clients.

Everything here is accounted per remote address (docs/protocol.md, "Admission limits"):

- **TCP connections** (`max_connections_per_address`): `guard_app` makes the node's
  aiohttp server create `GuardedRequestHandler`s, which reset a connection beyond the cap
  the moment it is accepted (before any parsing). A connection that does not send a
  complete request header within `http_idle_timeout` is closed (aiohttp's keep-alive
  timer, which also runs before the first request).
- **Game connections not yet seated** (`max_unjoined_per_address`): a websocket upgrade
  or a new SockJS session beyond it is answered 429 before anything is built.
- **The unjoined budget** (`unjoined_rate` per second, burst 4x, per address): every new
  game connection, and every frame (data or control) or `xhr_send` of a connection not
  yet seated, costs one token. Reconnecting does not refill it. Empty: new connections
  get 429, a connection's frame closes it with 4004.
- **Control frames** (websocket PING/PONG) share the connection's rate for messages
  other than inputs (`max_other_rate`, burst 2x; past it 4004), joined or not.
- **First message** (`first_message_timeout`): a game connection that sends nothing is
  closed with 4005 (`join_timeout` still bounds the whole join).
- **Accept errors** (EMFILE and the like) are counted and logged at most once per 10 s.

`AdmissionHandler` wraps the node's `ConnectionHandler` for the transports. A connection
counts as seated once the node's per-connection state has a `seat`. Addresses in
`admission_exempt` skip the per-address caps (a load-test machine, a trusted proxy).
Every refusal is counted in `arena_refused_total{limit}`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler
from aiohttp.web_server import Server

from engine.codec import Error, encode

from .connection import Connection, ConnectionHandler, Frame
from .metrics import Metrics
from .settings import NodeSettings
from .websocket import bound_reads

log = logging.getLogger(__name__)

UNJOINED_BURST = 4.0     # the unjoined budget holds this many seconds of `unjoined_rate`
PRUNE_EVERY = 10.0       # seconds between two sweeps of idle addresses
ACCEPT_LOG_EVERY = 10.0  # seconds between two log lines about failed accepts


class Bucket:
    """A token bucket: `rate` tokens per second, at most `burst` held."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float) -> bool:
        tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if tokens < 1.0:
            self.tokens = tokens
            return False
        self.tokens = tokens - 1.0
        return True


class Address:
    """What one remote address holds."""

    __slots__ = ("tcp", "conns", "sessions", "budget")

    def __init__(self, budget: Bucket):
        self.tcp = 0                       # open TCP connections
        self.conns: set[Connection] = set()  # live game connections (ws, SockJS sessions)
        self.sessions = 0                  # live SockJS sessions on /play
        self.budget = budget               # the unjoined budget

    def idle(self) -> bool:
        return not (self.tcp or self.conns or self.sessions)


def seated(conn: Connection) -> bool:
    return getattr(conn.state, "seat", None) is not None


class Admission:
    """Per-address accounting and the decisions built on it (one per node)."""

    def __init__(self, settings: NodeSettings, metrics: Metrics):
        self.s = settings
        self.metrics = metrics
        self.exempt = frozenset(a.strip() for a in settings.admission_exempt.split(",")
                                if a.strip())
        self.addresses: dict[str, Address] = {}
        self._accept_errors_logged = 0.0
        self._accept_errors_unlogged = 0
        self._pruned = self._now()

    def _now(self) -> float:
        return time.monotonic()

    def _get(self, addr: str) -> Address:
        a = self.addresses.get(addr)
        if a is None:
            now = self._now()
            if now - self._pruned >= PRUNE_EVERY:
                self._prune(now)
            rate = self.s.unjoined_rate
            a = self.addresses[addr] = Address(Bucket(rate, rate * UNJOINED_BURST, now))
        return a

    @staticmethod
    def _forgettable(a: Address, now: float) -> bool:
        # An address with nothing open is forgotten only once its budget is full again:
        # reconnecting must not refill it.
        b = a.budget
        return a.idle() and b.tokens + (now - b.stamp) * b.rate >= b.burst

    def _forget(self, addr: str, a: Address) -> None:
        if self._forgettable(a, self._now()):
            self.addresses.pop(addr, None)

    def _prune(self, now: float) -> None:
        """Forget the idle addresses whose budget has refilled since (no event did)."""
        self._pruned = now
        for addr in [k for k, a in self.addresses.items() if self._forgettable(a, now)]:
            del self.addresses[addr]

    def refuse(self, limit: str) -> None:
        self.metrics.refused[limit] += 1

    # --- TCP -------------------------------------------------------------------------------

    def tcp_opened(self, addr: str) -> bool:
        """Count one accepted TCP connection; False (counted) if over the address's cap."""
        a = self._get(addr)
        if a.tcp >= self.s.max_connections_per_address and addr not in self.exempt:
            self.refuse("connections_per_address")
            self._forget(addr, a)
            return False
        a.tcp += 1
        return True

    def tcp_closed(self, addr: str) -> None:
        a = self.addresses.get(addr)
        if a is not None:
            a.tcp -= 1
            self._forget(addr, a)

    def accept_error(self, exc: BaseException | None) -> None:
        """A failed accept (EMFILE, ENFILE, ENOBUFS...): counted; logged once per 10 s."""
        self.metrics.accept_errors += 1
        now = self._now()
        if now - self._accept_errors_logged >= ACCEPT_LOG_EVERY:
            more = self._accept_errors_unlogged
            self._accept_errors_unlogged = 0
            self._accept_errors_logged = now
            log.error("accept failed: %s%s (the node refuses new connections until it "
                      "recovers; arena_accept_errors_total)", exc,
                      f"; {more} more since the last report" if more else "")
        else:
            self._accept_errors_unlogged += 1

    # --- game connections ------------------------------------------------------------------

    def unjoined(self, addr: str) -> int:
        a = self.addresses.get(addr)
        return 0 if a is None else sum(1 for c in a.conns if not seated(c))

    def may_connect(self, addr: str) -> str | None:
        """Before a websocket upgrade or a new SockJS session: None, or why not (counted).
        A yes costs one token of the address's unjoined budget."""
        if addr in self.exempt:
            return None
        if self.unjoined(addr) >= self.s.max_unjoined_per_address:
            self.refuse("unjoined_per_address")
            return "Too many connections from this address waiting to join"
        if not self._get(addr).budget.take(self._now()):
            self.refuse("unjoined_rate")
            return "Too many connection attempts from this address"
        return None

    def charge_unjoined(self, conn: Connection) -> bool:
        """One frame (or xhr_send) of `conn`: free once seated, else one token of its
        address's unjoined budget. False (counted) if the budget is empty."""
        if seated(conn) or conn.remote in self.exempt:
            return True
        if self._get(conn.remote).budget.take(self._now()):
            return True
        self.refuse("unjoined_rate")
        return False

    def track(self, conn: Connection) -> None:
        self._get(conn.remote).conns.add(conn)

    def untrack(self, conn: Connection) -> None:
        a = self.addresses.get(conn.remote)
        if a is not None:
            a.conns.discard(conn)
            self._forget(conn.remote, a)

    # --- SockJS sessions -------------------------------------------------------------------

    def may_open_session(self, addr: str, live: int) -> tuple[int, str] | None:
        """Before a new SockJS session on /play (`live` sessions exist): None, or the HTTP
        status and text of the refusal (counted)."""
        s = self.s
        if live >= s.sockjs_max_sessions:
            self.refuse("sockjs_sessions")
            return 503, "Too many sessions"
        if addr in self.exempt:
            return None
        a = self.addresses.get(addr)
        if a is not None and a.sessions >= s.sockjs_max_sessions_per_address:
            self.refuse("sockjs_sessions_per_address")
            return 429, "Too many sessions from this address"
        if live >= s.sockjs_max_sessions - s.sockjs_session_reserve and self.unjoined(addr):
            self.refuse("sockjs_session_reserve")
            return 503, "Too many sessions"
        reason = self.may_connect(addr)
        return None if reason is None else (429, reason)

    def session_opened(self, addr: str) -> None:
        self._get(addr).sessions += 1

    def session_closed(self, addr: str) -> None:
        a = self.addresses.get(addr)
        if a is not None and a.sessions:
            a.sessions -= 1
            self._forget(addr, a)


class _Entry:
    __slots__ = ("timer", "control", "sends")

    def __init__(self, timer: asyncio.TimerHandle | None, control: Bucket, sends: Bucket):
        self.timer = timer
        self.control = control  # websocket control frames: max_other_rate, burst 2x
        self.sends = sends      # SockJS xhr_send/jsonp_send requests


class AdmissionHandler:
    """The node's `ConnectionHandler` as the transports see it: the unjoined budget, the
    first-message timeout and the control-frame rate in front of it."""

    def __init__(self, inner: ConnectionHandler, admission: Admission):
        self.inner = inner
        self.admission = admission
        s = admission.s
        self._control_rate = float(s.max_other_rate)
        # an honest SockJS sender posts at most one request per message
        self._send_rate = float(s.max_input_rate + s.max_other_rate)
        self._first_message_timeout = s.first_message_timeout
        self._entries: dict[Connection, _Entry] = {}

    def reject(self, conn: Connection, code: int, reason: str) -> None:
        """The node's refusal (`error`, then the close with the same code)."""
        reject = getattr(self.inner, "reject", None)
        if reject is not None:
            reject(conn, code, reason)
            return
        if not conn.closed:
            conn.send(Frame(encode(Error(code, reason))))
            conn.close(code, reason)

    def connection_made(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        timer = loop.call_later(self._first_message_timeout, self._silent, conn)
        now = time.monotonic()  # the buckets' clock (Admission._now)
        self._entries[conn] = _Entry(timer, Bucket(self._control_rate, 2 * self._control_rate, now),
                                     Bucket(self._send_rate, 2 * self._send_rate, now))
        self.admission.track(conn)
        self.inner.connection_made(conn)

    def _silent(self, conn: Connection) -> None:
        entry = self._entries.get(conn)
        if entry is not None:
            entry.timer = None
        if not conn.closed and not seated(conn):
            self.admission.refuse("first_message_timeout")
            self.reject(conn, 4005, "Join timeout")

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        if seated(conn):  # nothing to charge: the first-message timer ended before the join
            self.inner.message_received(conn, data)
            return
        entry = self._entries.get(conn)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        if conn.closed:
            return
        if not self.admission.charge_unjoined(conn):
            self.reject(conn, 4004, "Input flood")
            return
        self.inner.message_received(conn, data)

    def control_frame(self, conn: Connection) -> bool:
        """A websocket PING or PONG from `conn`. False: over budget, `conn` is closed (4004)
        and its transport should stop reading it."""
        if conn.closed:
            return False
        entry = self._entries.get(conn)
        ok = entry is None or entry.control.take(time.monotonic())
        if not ok:
            self.admission.refuse("control_rate")
        if ok and not self.admission.charge_unjoined(conn):
            ok = False
        if not ok:
            self.reject(conn, 4004, "Input flood")
        return ok

    def send_request(self, conn: Connection) -> bool:
        """An `xhr_send`/`jsonp_send` request for `conn`, before its body is read: the
        session's sends per second (`max_input_rate + max_other_rate`, burst 2x) and, not
        yet seated, the unjoined budget. False: refused, `conn` closed (4004)."""
        if conn.closed:
            return False
        entry = self._entries.get(conn)
        ok = entry is None or entry.sends.take(time.monotonic())
        if not ok:
            self.admission.refuse("sockjs_send_rate")
        if ok and not self.admission.charge_unjoined(conn):
            ok = False
        if not ok:
            self.reject(conn, 4004, "Input flood")
        return ok

    def connection_lost(self, conn: Connection) -> None:
        entry = self._entries.pop(conn, None)
        if entry is not None and entry.timer is not None:
            entry.timer.cancel()
        self.admission.untrack(conn)
        self.inner.connection_lost(conn)


# --- the aiohttp server: TCP caps at accept, the idle timeout ------------------------------


class GuardedRequestHandler(RequestHandler):
    """aiohttp's HTTP protocol, counted per address; over the cap: reset at once."""

    __slots__ = ("_admission", "_addr", "_refused")

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        admission: Admission = self._manager.admission  # type: ignore[union-attr]
        peer = transport.get_extra_info("peername")
        addr = peer[0] if isinstance(peer, tuple) and peer else ""
        self._admission = admission
        self._addr = addr
        self._refused = not admission.tcp_opened(addr)
        if self._refused:
            transport.abort()  # RST: no TIME_WAIT, the fd is free now
            return
        bound_reads(transport)  # a body the node refuses unread costs little
        super().connection_made(transport)

    def connection_lost(self, exc: BaseException | None) -> None:
        if self._refused:
            return
        self._admission.tcp_closed(self._addr)
        super().connection_lost(exc)

    def _process_keepalive(self) -> None:
        closing = self._force_close
        super()._process_keepalive()
        if self._force_close and not closing:
            self._admission.refuse("http_idle_timeout")


class GuardedServer(Server):
    admission: Admission

    def __call__(self) -> RequestHandler:
        return GuardedRequestHandler(self, loop=self._loop, **self._kwargs)

    def pre_shutdown(self) -> None:
        """aiohttp closes idle keep-alive connections here, before the app's shutdown
        handlers run; a polling client's next request (the one that fetches its
        `c[4030,...]`) would then find no way in, the listener being closed already. They
        stay open until `Server.shutdown`, right after the node's shutdown."""


def guard_app(app: web.Application, admission: Admission) -> None:
    """Make every server aiohttp builds for `app` (run_app, AppRunner, TestServer) a
    `GuardedServer`."""
    make = app._make_handler

    def make_handler(*, loop: Any = None, **kwargs: Any) -> Server:
        server = make(loop=loop, **kwargs)
        server.__class__ = GuardedServer
        server.admission = admission  # type: ignore[attr-defined]
        return server

    object.__setattr__(app, "_make_handler", make_handler)


def install_accept_error_handler(loop: asyncio.AbstractEventLoop, admission: Admission) -> None:
    """asyncio logs a traceback for every failed accept (EMFILE: thousands a second); count
    them and log one line per 10 s instead. Other errors go to the previous handler."""
    previous = loop.get_exception_handler()

    def handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        if str(context.get("message", "")).startswith("socket.accept() out of system resource"):
            admission.accept_error(context.get("exception"))
            return
        handle = context.get("handle")
        if isinstance(context.get("exception"), ValueError) and "_start_serving" in repr(handle):
            # asyncio's accept retry, 1 s after an accept error, fired after shutdown had
            # closed the listening socket: nothing to serve any more.
            log.debug("accept retry after shutdown: %s", context.get("exception"))
            return
        if previous is not None:
            previous(loop, context)
        else:
            loop.default_exception_handler(context)

    loop.set_exception_handler(handler)
