"""One bot player over the real path: lobby guest, queue, seat token, node connection,
`join`, play until `match_end`, queue again, until told to stop.

The bot speaks the protocol through `engine.codec` (the client side of docs/protocol.md)
and knows no game: it finds its own player (the entity whose id is `welcome.player_id`)
and that entity's `ack` field in `welcome.config.schema`, and asks a brain
(`loadtest.brain`: the game's own, looked up by name in the registry, or a generic one)
for each input's values. Everything it measures goes into a `stats.Group` that its worker
flushes once a second.
"""

from __future__ import annotations

import asyncio
import math
import operator
import random
import socket
import time
from collections import deque
from collections.abc import Awaitable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import aiohttp
import msgpack

from engine import codec
from loadtest import brain as brains
from loadtest.seating import LobbyError, Seating, sleep_or_stop
from loadtest.shared import MISSING, SharedRoom, SharedRooms, apply_copy, outcome_for
from loadtest.sockjs_client import SockJSClient, SockJSError
from loadtest.stats import Group
from loadtest.wsclient import WebSocketError, WSClient

#: --transport values -> how a bot connects.
TRANSPORTS = ("websocket", "sockjs-websocket", "xhr-streaming", "xhr-polling")
_SOCKJS = {"sockjs-websocket": "websocket", "xhr-streaming": "xhr_streaming", "xhr-polling": "xhr"}
STATE_MAX_BYTES = 1 << 20  # largest node -> client message a bot decodes
MAX_PENDING_INPUTS = 256   # unacknowledged inputs kept for the latency measure
STATE_TIMEOUT = 5.0        # seconds of silence from a node that sends state 20 times a second
WATCHDOG_SLACK = 0.5       # the read watchdog fires 0..this late (it is moved at most every 0.5 s)
LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


@dataclass(frozen=True)
class BotConfig:
    """What every bot of a run shares (plain data: it crosses process boundaries)."""

    lobby_url: str
    transports: tuple[str, ...] = ("websocket",)  # bot i uses transports[i % len]
    mode: str | None = None               # lobby queue mode; None = the lobby's default
    allowed_hosts: frozenset[str] = LOOPBACK
    input_hz: float = 20.0
    ping_interval: float = 2.0
    poll_interval: float = 0.5            # GET /api/queue period while waiting
    queue_timeout: float = 120.0          # give up a ticket after this long (error, re-queue)
    connect_timeout: float = 10.0         # node connection + welcome + first state
    request_timeout: float = 15.0         # one lobby HTTP request
    match_end_grace: float = 3.0          # wait for the node's close after match_end
    slow_after: float = 3.0               # a slow bot stops reading this long into a match
    slow_stall: float = 30.0              # ... for this long, then reads again to see its fate
    leave_after: float = 0.0              # > 0: leave each match after 0.5x..1.5x this (churn)
    lobby_wait: str = "auto"              # the wait for a seat: loadtest.seating.WAITS


def host_allowed(url: str, allowed: frozenset[str]) -> bool:
    return (urlsplit(url).hostname or "") in allowed


def effective_patch_hz(config: dict) -> float:
    """Patches per second the node really sends: the patch rate is rounded to a divisor of
    the simulation rate (engine.clock.patch_every), so sim 30 / patch 20 gives 15."""
    sim_hz = config.get("sim_hz") or 0
    patch_hz = config.get("patch_hz") or 0
    if not (isinstance(sim_hz, int) and isinstance(patch_hz, int) and sim_hz > 0 and patch_hz > 0):
        return float(patch_hz or 20)
    return sim_hz / max(1, round(sim_hz / patch_hz))


_first = operator.itemgetter(0)


_unpackb = msgpack.unpackb
_all_int = frozenset((int,)).issuperset
_all_list = frozenset((list,)).issuperset


def plain_delta(raw: bytes | str) -> list | None:
    """The wire array of `raw` if it is a delta whose shape the bot relies on holds (ints
    for tick and base, int ids, added entities as non-empty arrays, events as non-empty
    arrays with an int code, lists and maps where the protocol has them), else None:
    `codec.decode_any` then checks it
    field by field. What this leaves to others: `loadtest.shared.apply_copy` checks every
    updated index, and the field values are the game's (its brain reads them). A bot decodes 20
    deltas a second; the full check costs three times msgpack's own decoding."""
    if type(raw) is not bytes or len(raw) > STATE_MAX_BYTES:
        return None
    try:
        obj = _unpackb(raw, raw=False, strict_map_key=False)
    except Exception:  # garbage: codec.decode_any says how
        return None
    if (type(obj) is not list or len(obj) < 8 or obj[0] != 12 or type(obj[1]) is not int
            or type(obj[2]) is not int or type(obj[5]) is not list or type(obj[6]) is not dict):
        return None
    events = obj[7]
    if type(events) is not list or events and not (
            _all_list(map(type, events)) and 0 not in map(len, events) and _all_int(map(type, map(_first, events)))):
        return None
    added = obj[4]
    if type(added) is not dict:
        return None
    if added:
        values = added.values()
        if not (_all_int(map(type, added)) and _all_list(map(type, values)) and 0 not in map(len, values)):
            return None
    return obj


_pack = msgpack.Packer().pack
_monotonic = time.monotonic


def _pack_input(seq: int, values: tuple) -> bytes:
    """`codec.encode(codec.Input(seq, values))` (the same bytes), without the message
    object or the codec's type dispatch."""
    return _pack([3, seq, *values])


def _watch_due(t: float) -> float:
    """The next multiple of WATCHDOG_SLACK after loop time `t`: every bot's read watchdog
    of a worker fires at the same instants (one wake-up of the loop, not one per bot)."""
    return (math.floor(t / WATCHDOG_SLACK) + 1) * WATCHDOG_SLACK


def _ignore(message: bytes | str) -> None:
    """Messages after the bot stopped reading a connection (it is being closed)."""


class NodeConnection:
    """The bot's end of one node connection: raw binary websocket (`loadtest.wsclient`)
    or SockJS."""

    def __init__(self, http: aiohttp.ClientSession, node_url: str, transport: str,
                 connect_timeout: float):
        self.http = http
        self.transport = transport
        self.node_url = node_url.rstrip("/")
        self.connect_timeout = connect_timeout
        self.ws: WSClient | None = None
        self.sockjs: SockJSClient | None = None
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def bytes_in(self) -> int:
        return self.sockjs.bytes_in if self.sockjs else self.ws.bytes_in if self.ws else 0

    @property
    def bytes_out(self) -> int:
        return self.sockjs.bytes_out if self.sockjs else self.ws.bytes_out if self.ws else 0

    async def connect(self) -> None:
        if self.transport == "websocket":
            url = self.node_url.replace("http://", "ws://", 1).replace("https://", "wss://", 1)
            async with asyncio.timeout(self.connect_timeout):
                self.ws = await WSClient.connect(url + "/play/websocket", max_msg_size=STATE_MAX_BYTES)
        else:
            self.sockjs = SockJSClient(self.http, self.node_url + "/play", _SOCKJS[self.transport],
                                       connect_timeout=self.connect_timeout,
                                       max_frame_bytes=4 * STATE_MAX_BYTES)
            await self.sockjs.connect()

    def send_now(self, payload: bytes) -> bool:
        """Send without waiting, if the transport can (the raw websocket): True if sent."""
        if self.ws is None:
            return False
        self.ws.send_bytes(payload)
        return True

    async def send(self, payload: bytes) -> None:
        if self.ws is not None:
            self.ws.send_bytes(payload)
        else:
            assert self.sockjs is not None
            await self.sockjs.send(codec.to_text(payload))

    async def recv(self) -> bytes | str | None:
        """The next message (bytes or base64 text), or None once closed."""
        if self.sockjs is not None:
            message = await self.sockjs.recv()
            if message is None:
                self.close_code, self.close_reason = self.sockjs.close_code, self.sockjs.close_reason
            return message
        assert self.ws is not None
        message = await self.ws.recv()
        if message is None:
            self.close_code, self.close_reason = self.ws.close_code, self.ws.close_reason
        return message

    def _ws_transport(self) -> asyncio.Transport | None:
        if self.ws is not None:
            return self.ws.transport
        conn = getattr(self.sockjs.websocket if self.sockjs else None, "_conn", None)  # aiohttp's, private
        return getattr(conn, "transport", None)

    def pause_reading(self) -> None:
        """Stop reading the socket, as a frozen client does: the kernel's receive window
        (shrunk to 4 KB) fills, then the node's send buffer. Without access to the
        transport, not calling `recv` has the same effect once aiohttp's 128 KB are full."""
        transport = self._ws_transport()
        if transport is None:
            return
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        transport.pause_reading()

    def resume_reading(self) -> None:
        transport = self._ws_transport()
        if transport is not None and not transport.is_closing():
            transport.resume_reading()

    async def close(self) -> None:
        if self.ws is not None:
            await self.ws.close()
        elif self.sockjs is not None:
            await self.sockjs.close()


@dataclass
class _Match:
    """Per-connection bookkeeping."""

    t_queue: float
    t_connect: float
    patch_hz: float = 20.0
    patch_every: int = 1
    player_id: int = 0
    brain: brains.Brain | None = None
    ack_at: dict = field(default_factory=dict)    # entity kind -> index of its ack field
    entities: dict = field(default_factory=dict)
    state_tick: int = -1
    frames: int = 0
    first_frame: float = 0.0
    last_frame: float = 0.0
    first_tick: int = 0
    last_tick: int = 0
    ended: bool = False
    left: bool = False              # the bot sent `leave` (churn)
    stalled: bool = False           # a slow bot stopped reading during this match
    leave_at: float = math.inf
    error_code: int | None = None  # from an `error` message: the close code to come
    moved: tuple[str, str] | None = None  # `moved` (node_url, resume_token): 4031 follows
    move_from: float | None = None  # last state frame before the move (the gap's start)
    share: SharedRoom | None = None  # this room's last delta, shared by this process's bots


class Bot:
    """One simulated player. `run()` loops queue -> play until `stop` is set."""

    def __init__(self, index: int, cfg: BotConfig, http_node: aiohttp.ClientSession,
                 groups: dict[str, Group], stop: asyncio.Event, *, slow: bool = False,
                 shared: SharedRooms | None = None):
        self.index = index
        # the worker's rooms (loadtest.shared); None: this bot decodes every delta itself
        self.shared = shared
        self.cfg = cfg
        self.http_node = http_node
        self.stop = stop
        self.slow = slow
        self.group_name = "slow" if slow else "normal"
        self.groups = groups
        self.g: Group = groups[self.group_name]  # the worker keeps its groups (take() empties them)
        self._frames_unflushed = 0  # state frames not yet in g.counters["frames"] (once a second)
        self._shared_unflushed = 0  # deltas taken from the room's shared outcome, likewise
        self._sent_unflushed = 0      # inputs written at once (raw websocket), likewise
        self._awaiting_unflushed = 0  # inputs that joined `pending`, likewise
        self._intervals: list[float] = []  # state intervals for hist["state_interval"], likewise
        self._acks: list[float] = []       # input -> ack times for hist["input_ack"], likewise
        self.transport = cfg.transports[index % len(cfg.transports)]
        self.rng = random.Random(index)
        self.state = "idle"  # idle, lobby, queued, connecting, playing, done
        self.lobby = Seating(cfg.lobby_url, self.g, stop, self.rng, mode=cfg.mode,
                             poll_interval=cfg.poll_interval, queue_timeout=cfg.queue_timeout,
                             request_timeout=cfg.request_timeout, wait=cfg.lobby_wait)
        self.conn: NodeConnection | None = None
        self._reported_in = 0
        self._reported_out = 0
        # per-bot totals for the report
        self.total_in = 0
        self.total_out = 0
        self.matches = 0
        self.frames = 0
        self.frames_expected = 0
        # input state
        self.seq = 0
        self.pending: deque[tuple[int, float]] = deque()
        self.match: _Match | None = None
        self.requeue_from: float | None = None  # when the last match ended
        self.next_ping = 0.0
        # the raw websocket's reader (`_read_ws`)
        self._reading: asyncio.Future | None = None
        self._watchdog: asyncio.TimerHandle | None = None
        self._rx_at = 0.0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._end_seen: float | None = None
        self._seen_state = False
        self._stall_done = False


    def error(self, cause: str) -> None:
        self.g.errors[cause] += 1

    # --- lobby ----------------------------------------------------------------------------

    async def queue(self) -> tuple[str, str, float] | None:
        """Queue and wait until matched: (node_url, token, t_queue), or None if stopped."""
        self.state = "queued"
        if not await self.lobby.join():
            return None
        if self.requeue_from is not None:
            self.g.hist["requeue_wait"].record(time.monotonic() - self.requeue_from)
            self.requeue_from = None
        return await self.lobby.wait_for_seat()

    # --- the node ----------------------------------------------------------------------------

    def flush_counts(self) -> None:
        """Move what the bot counts in plain attributes (frames, inputs, shared deltas,
        state intervals and ack times: cheaper than a Counter or histogram update per
        message) into the group."""
        counters = self.g.counters
        if self._intervals:
            self.g.hist["state_interval"].record_many(self._intervals)
            self._intervals = []
        if self._acks:
            self.g.hist["input_ack"].record_many(self._acks)
            self._acks = []
        if self._frames_unflushed:
            counters["frames"] += self._frames_unflushed
            self._frames_unflushed = 0
        if self._shared_unflushed:
            counters["deltas_shared"] += self._shared_unflushed
            self._shared_unflushed = 0
        if self._sent_unflushed:
            counters["inputs_sent"] += self._sent_unflushed
            self._sent_unflushed = 0
        if self._awaiting_unflushed:
            counters["inputs_awaiting_ack"] += self._awaiting_unflushed
            self._awaiting_unflushed = 0

    def flush_bytes(self) -> None:
        """Move the live connection's byte counts and `flush_counts` into the group (once a
        second, and at a match's end)."""
        self.flush_counts()
        if self.conn is None:
            return
        bin_, bout = self.conn.bytes_in, self.conn.bytes_out
        self.g.counters["bytes_in"] += bin_ - self._reported_in
        self.g.counters["bytes_out"] += bout - self._reported_out
        self.total_in += bin_ - self._reported_in
        self.total_out += bout - self._reported_out
        self._reported_in, self._reported_out = bin_, bout

    async def play(self, node_url: str, token: str, t_queue: float) -> None:
        if not host_allowed(node_url, self.cfg.allowed_hosts):
            self.error("node host not allowed")
            raise LobbyError("node host not allowed")
        self.state = "connecting"
        m = self.match = _Match(t_queue=t_queue, t_connect=time.monotonic())
        conn = self.conn = NodeConnection(self.http_node, node_url, self.transport, self.cfg.connect_timeout)
        self._reported_in = self._reported_out = 0
        self.seq = 0
        self.g.counters["connections"] += 1
        sender: asyncio.Task | None = None
        first: codec.Message = codec.Join(token)
        try:
            while True:
                try:
                    await conn.connect()
                    await conn.send(codec.encode(first))
                except (aiohttp.ClientError, SockJSError, WebSocketError, TimeoutError, OSError) as exc:
                    self.error(f"connect: {type(exc).__name__}")
                    return
                self.next_ping = time.monotonic() + self.rng.uniform(0, self.cfg.ping_interval)
                sender = asyncio.create_task(self._leave_on_stop(conn))
                await self._read_loop(conn, m)
                moved, m.moved = m.moved, None
                if (moved is None or conn.close_code != 4031 or self.stop.is_set()
                        or not host_allowed(moved[0], self.cfg.allowed_hosts)):
                    break
                # the match goes on on another node: resume there (docs/protocol.md, moved)
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
                sender = None
                await conn.close()
                self.flush_bytes()
                self._reported_in = self._reported_out = 0
                m.move_from = m.last_frame or time.monotonic()
                conn = self.conn = NodeConnection(self.http_node, moved[0], self.transport,
                                                  self.cfg.connect_timeout)
                first = codec.Resume(moved[1])
                self.g.counters["connections"] += 1
        finally:
            if sender is not None:
                sender.cancel()
                await asyncio.gather(sender, return_exceptions=True)
            await conn.close()
            self._abandon_pending()
            self.flush_bytes()
            self._account_frames(m)
            self._leave_share(m)
            self.conn = None
            self.match = None

    def _leave_share(self, m: _Match) -> None:
        if m.share is not None and self.shared is not None:
            self.shared.leave(m.share)
        m.share = None

    def _account_frames(self, m: _Match) -> None:
        if not m.frames:
            return
        span = m.last_frame - m.first_frame
        expected = round(span * m.patch_hz) + 1
        expected_ticks = (m.last_tick - m.first_tick) // m.patch_every + 1
        self.g.counters["frames_expected"] += expected
        self.g.counters["frames_expected_by_tick"] += expected_ticks
        self.frames += m.frames
        self.frames_expected += expected

    async def _read_loop(self, conn: NodeConnection, m: _Match) -> None:
        """Read until the connection closes or stays silent too long: on the raw websocket
        each message is handled as the client parses it (`_read_ws`), on SockJS by a loop
        of `recv()` (`_read_recv`)."""
        if conn.ws is not None:
            await self._read_ws(conn, conn.ws, m)
        else:
            await self._read_recv(conn, m)

    def _on_timeout(self, m: _Match) -> None:
        if m.stalled:
            self.g.closes["silent after stall"] += 1
        elif m.ended or m.left or self.stop.is_set():
            self.g.closes["closed by bot"] += 1
        else:
            self.error("timeout waiting for the node")

    async def _read_ws(self, conn: NodeConnection, ws: WSClient, m: _Match) -> None:
        """The raw websocket: `ws.listen` calls `_on_ws_message` for every message, from the
        client's `data_received`: no future, no coroutine step per message. This coroutine
        only waits for the outcome: closed, ended by a message, silent too long, or a slow
        bot's stall.

        The watchdog is one timer per connection that fires every `WATCHDOG_SLACK` s (on
        the same instants for every bot of the worker: `_watch_due`) and
        compares the time of the last message with the timeout in force (`connect_timeout`
        until the first state, then `STATE_TIMEOUT`, `match_end_grace` once the match is
        over or left), so the bot gives up after `timeout` to `timeout + WATCHDOG_SLACK` s
        of silence; nothing is rescheduled per message."""
        loop = self._loop = asyncio.get_running_loop()
        self._seen_state = False
        self._stall_done = False
        self._rx_at = time.monotonic()
        self._end_seen = None
        try:
            while True:
                if ws.done:
                    conn.close_code, conn.close_reason = ws.close_code, ws.close_reason
                    self._record_close(conn, m)
                    return
                outcome = self._reading = loop.create_future()
                self._watchdog = loop.call_at(_watch_due(loop.time()), self._watch)
                ws.listen(self._on_ws_message, self._on_ws_done)
                reason = await outcome
                self._watchdog.cancel()
                if reason == "closed":
                    conn.close_code, conn.close_reason = ws.close_code, ws.close_reason
                    self._record_close(conn, m)
                    return
                if reason == "timeout":
                    self._on_timeout(m)
                    return
                if reason == "end":
                    return
                # "stall": a slow bot stops reading for a while
                ws.listen(None)
                await self._stall(conn, m)
                self._rx_at = time.monotonic()
        finally:
            ws.listen(_ignore)
            if self._watchdog is not None:
                self._watchdog.cancel()
            self._reading = self._watchdog = None

    def _finish(self, reason: str) -> None:
        outcome = self._reading
        if outcome is not None and not outcome.done():
            outcome.set_result(reason)

    def _on_ws_done(self) -> None:
        self._finish("closed")

    def _watch(self) -> None:
        outcome, m, loop = self._reading, self.match, self._loop
        if outcome is None or outcome.done() or m is None or loop is None:
            return
        now = time.monotonic()
        since = self._rx_at
        if m.ended or m.left:
            if self._end_seen is None:
                self._end_seen = now
            timeout, since = self.cfg.match_end_grace, max(since, self._end_seen)
        else:
            timeout = STATE_TIMEOUT if self._seen_state else self.cfg.connect_timeout
        if now - since >= timeout:
            outcome.set_result("timeout")
        else:
            self._watchdog = loop.call_at(_watch_due(loop.time()), self._watch)

    def _on_ws_message(self, raw: bytes | str) -> None:
        m = self.match
        outcome = self._reading
        if m is None or outcome is None or outcome.done():
            return  # the reader is not waiting (ending, or stalling): drop it
        now = self._rx_at = _monotonic()
        kind = self._on_message(raw, m, now)
        if kind is codec.Delta or kind is codec.Keyframe:
            self._seen_state = True
            if self.slow and not self._stall_done and now - m.first_frame > self.cfg.slow_after:
                self._stall_done = True
                outcome.set_result("stall")
        elif kind is None:
            outcome.set_result("end")

    async def _read_recv(self, conn: NodeConnection, m: _Match) -> None:
        """Read with `recv()` until the connection closes or stays silent too long.

        One watchdog timer per connection, not one per message: its deadline moves
        forward only once it is less than `timeout` away, so the bot gives up after
        `timeout` to `timeout + WATCHDOG_SLACK` s of silence."""
        loop = asyncio.get_running_loop()
        timeout = self.cfg.connect_timeout
        stalled = False
        seen_state = False
        try:
            async with asyncio.timeout(loop.time() + timeout) as watchdog:
                while True:
                    if (m.ended or m.left) and timeout != self.cfg.match_end_grace:
                        timeout = self.cfg.match_end_grace
                        watchdog.reschedule(loop.time() + timeout)
                    raw = await conn.recv()
                    if raw is None:
                        self._record_close(conn, m)
                        return
                    now_loop = loop.time()
                    if watchdog.when() - now_loop < timeout:
                        watchdog.reschedule(now_loop + timeout + WATCHDOG_SLACK)
                    kind = self._on_message(raw, m, time.monotonic())
                    if kind is None:
                        return
                    if kind is codec.Delta or kind is codec.Keyframe:
                        if not seen_state:
                            seen_state = True
                            if not (m.ended or m.left):
                                timeout = STATE_TIMEOUT
                                watchdog.reschedule(now_loop + timeout)
                        if self.slow and not stalled and time.monotonic() - m.first_frame > self.cfg.slow_after:
                            stalled = True
                            watchdog.reschedule(None)
                            await self._stall(conn, m)
                            watchdog.reschedule(loop.time() + timeout)
        except TimeoutError:
            self._on_timeout(m)

    def _on_message(self, raw: bytes | str, m: _Match, now: float | None = None) -> type | None:
        """Decode and account one message (received at `now`, monotonic; None: now): its
        type, or None if it ends the connection."""
        g = self.g
        if now is None:
            now = time.monotonic()
        share = m.share
        if share is not None:
            kept = share.outcomes.get(raw)
            if kept is not None:  # a delta another bot of the room decoded (the same bytes)
                self._on_state(kept[0], m, now, kept)
                return codec.Delta
        obj = plain_delta(raw)
        if obj is not None:  # most messages: a delta [12, tick, base, clock, added, removed, updated, events]
            self._on_state(obj, m, now, None, raw if share is not None else None)
            return codec.Delta
        try:
            msg = codec.decode_any(raw, STATE_MAX_BYTES)
        except codec.DecodeError as exc:
            self.error(f"decode {exc.code}")
            return None
        kind = type(msg)
        if kind is codec.Keyframe:
            self._on_state([11, msg.tick, 0, msg.clock, msg.entities, (), {}, msg.events], m, now, keyframe=True)
        elif kind is codec.Delta:
            self._on_state([12, msg.tick, msg.base, msg.clock, msg.added, msg.removed, msg.updated, msg.events],
                           m, now)
        elif kind is codec.Welcome:
            m.player_id = msg.player_id
            self._leave_share(m)  # a resume on another node is another room there
            if self.shared is not None:
                m.share = self.shared.join((self.conn.node_url if self.conn else "", msg.match_id))
            m.ack_at = brains.ack_indices(msg.config)
            m.brain, own = brains.make_brain(msg.config, msg.player_id, self.rng.getrandbits(32))
            g.counters["brain_game" if own else "brain_generic"] += 1
            m.patch_hz = effective_patch_hz(msg.config)
            sim_hz = msg.config.get("sim_hz")
            patch_hz = msg.config.get("patch_hz")
            if isinstance(sim_hz, int) and isinstance(patch_hz, int) and sim_hz > 0 and patch_hz > 0:
                m.patch_every = max(1, round(sim_hz / patch_hz))
            g.counters["welcomes"] += 1
            g.patch_rates[m.patch_hz] += 1
        elif kind is codec.Event:
            self._on_events(msg.events, m)
        elif kind is codec.Pong:
            g.hist["rtt"].record(max(0.0, (time.monotonic() * 1000 % (1 << 32) - msg.t) / 1000))
        elif kind is codec.Error:
            g.counters[f"error message {msg.code}"] += 1
            m.error_code = msg.code
        elif kind is codec.Moved:
            g.counters["moved"] += 1
            m.moved = (msg.node_url, msg.resume_token)
        else:
            self.error(f"unexpected message {kind.__name__}")
        return kind

    def _on_state(self, obj: list, m: _Match, now: float, kept: list | None = None,
                  raw: bytes | None = None, keyframe: bool = False) -> None:
        """A delta as its wire array `obj` ([12, tick, base, clock, added, removed, updated,
        events]), or with `keyframe` a keyframe in the same places (`obj[4]`: the whole
        state, nothing removed or updated).

        `kept`: the outcomes the room kept for this very payload (`SharedRoom.outcomes`),
        one of which this bot takes if it was computed from its own state; else it
        applies the delta itself. `raw`: a delta this bot decoded itself, whose outcome
        it publishes in its room's `m.share` (loadtest.shared)."""
        tick = obj[1]
        if self.state != "playing":
            self.state = "playing"
            g = self.g
            g.counters["matches_started"] += 1
            g.hist["time_to_seat"].record(now - m.t_queue)
            g.hist["join_to_state"].record(now - m.t_connect)
        self._frames_unflushed += 1
        frames = m.frames = m.frames + 1
        if frames == 1:
            m.first_frame, m.first_tick = now, tick
            if self.cfg.leave_after > 0:
                m.leave_at = now + self.cfg.leave_after * self.rng.uniform(0.5, 1.5)
        else:
            self._intervals.append(now - m.last_frame)
            gap = tick - m.last_tick
            if gap > m.patch_every:
                self.g.counters["tick_gaps"] += gap // m.patch_every - 1
        if m.move_from is not None:
            self.g.hist["move_gap"].record(now - m.move_from)
            m.move_from = None
        m.last_frame = now
        m.last_tick = tick
        if keyframe:
            self.g.counters["keyframes"] += 1
            new = obj[4]
        elif obj[2] != m.state_tick:
            self.g.counters["delta_base_mismatch"] += 1  # wait for the keyframe the node sends
            return
        else:
            old = m.entities
            if kept is None:
                new = MISSING
            elif kept[1] is old:  # the usual case: the state the first bot applied it to
                new = kept[2]
            else:
                new = outcome_for(kept, old)
            if new is not MISSING:  # what apply_copy(old, ...) gives: the same delta, the same state
                self._shared_unflushed += 1
            else:
                try:
                    new = apply_copy(old, obj[4], obj[5], obj[6])
                except codec.DecodeError:
                    new = None
                if raw is not None:
                    m.share.publish(raw, obj, old, new)
            if new is None:
                self.error("delta does not apply")
                m.state_tick = -1
                return
        m.entities = new
        m.state_tick = tick
        pending = self.pending
        if pending:  # the inputs the bot's own entity acknowledges (none if it does not follow its schema)
            me = new.get(m.player_id)
            if me is not None:
                index = m.ack_at.get(me[0])
                if index is not None and index < len(me):
                    ack = me[index]
                    if type(ack) is int:
                        acks = self._acks
                        while pending and pending[0][0] <= ack:
                            acks.append(now - pending.popleft()[1])
        if obj[7]:
            self._on_events(obj[7], m)

    def _on_events(self, events: list, m: _Match) -> None:
        for event in events:
            if event and event[0] == codec.EV_MATCH_END and not m.ended:
                m.ended = True
                self.requeue_from = time.monotonic()
                self._abandon_pending()
                self.matches += 1
                self.g.counters["matches_completed"] += 1

    def _record_close(self, conn: NodeConnection, m: _Match) -> None:
        code = conn.close_code
        if code in (None, 3000) and m.error_code is not None:
            code = m.error_code  # SockJS lost the close frame; the `error` message said it
        if self.stop.is_set() and not m.ended:
            self.g.closes["closed by bot"] += 1
        elif code == 4031 and m.moved is not None:
            self.g.closes["4031 moved"] += 1
        elif code == 1000 and m.ended:
            self.g.closes["1000 after match_end"] += 1
        elif code in (1000, 3000) and m.left:
            self.g.closes[f"{code} after leave"] += 1
        elif code == 3000 and m.ended:
            self.g.closes["3000 after match_end (SockJS lost the 1000)"] += 1
        elif m.stalled:  # what a slow bot is there to provoke: 4020, or 1006 if the close
            # frame was stuck behind the full buffer the node gave up on
            self.g.closes[f"{code if code is not None else 'abnormal'} after stall"] += 1
        else:
            label = str(code) if code is not None else "abnormal"
            self.g.closes[label] += 1
            self.error(f"close {label}" + (f" ({conn.close_reason[:60]})" if code is None else ""))

    async def _stall(self, conn: NodeConnection, m: _Match) -> None:
        """A slow client: stop reading (inputs keep going), then read again to see the end."""
        self.g.counters["stalls"] += 1
        m.stalled = True
        conn.pause_reading()
        await sleep_or_stop(self.stop, self.cfg.slow_stall)
        conn.resume_reading()
        self._abandon_pending()
        m.last_frame = time.monotonic()

    def tick(self, now: float) -> Awaitable[None] | None:
        """One input slot (called by the worker's `InputTicker` at `input_hz`): the input,
        a ping every `ping_interval`, or `leave` when the churn timer says so. On the raw
        websocket the frames are written at once (None); on SockJS the returned awaitable
        sends them."""
        m, conn = self.match, self.conn
        if m is None or conn is None or m.ended or m.left or self.state != "playing":
            return None
        ws = conn.ws
        if ws is not None and now < m.leave_at and now < self.next_ping:  # most slots: one input
            try:
                ws.send_bytes(self._next_input(m, now))
            except (ConnectionError, OSError):
                return None  # the connection went away: the reader records why
            self._sent_unflushed += 1
            return None
        out = self._slot(m, now)
        if ws is None:
            return self._send_slot(conn, out)
        counters = self.g.counters
        try:
            for payload, counter in out:
                conn.ws.send_bytes(payload)
                if counter:
                    counters[counter] += 1
        except (ConnectionError, OSError):
            pass  # the connection went away: the reader records why
        return None

    def _slot(self, m: _Match, now: float) -> list[tuple[bytes, str | None]]:
        """The frames of one input slot, each with the counter it bumps once sent."""
        if now >= m.leave_at:
            m.left = True
            self._abandon_pending()
            self.requeue_from = time.monotonic()
            return [(codec.encode(codec.Leave()), "leaves")]
        out: list[tuple[bytes, str | None]] = [(self._next_input(m, now), "inputs_sent")]
        if now >= self.next_ping:
            self.next_ping = now + self.cfg.ping_interval
            out.append((codec.encode(codec.Ping(int(now * 1000) % (1 << 32))), None))
        return out

    async def _send_slot(self, conn: NodeConnection, out: list[tuple[bytes, str | None]]) -> None:
        try:
            for payload, counter in out:
                await conn.send(payload)
                if counter:
                    self.g.counters[counter] += 1
        except (aiohttp.ClientError, SockJSError, ConnectionError, RuntimeError, OSError):
            pass  # the connection went away: the reader records why

    async def _leave_on_stop(self, conn: NodeConnection) -> None:
        """At the end of the run: leave the match for good; the reader then sees the close."""
        await self.stop.wait()
        m = self.match
        try:
            if m is not None and not m.ended and not m.left:
                await conn.send(codec.encode(codec.Leave()))
                await asyncio.sleep(0.2)
        except (aiohttp.ClientError, SockJSError, ConnectionError, RuntimeError, OSError):
            pass
        await conn.close()

    def _next_input(self, m: _Match, now: float) -> bytes:
        """This slot's input, encoded: the brain's values; the input joins `pending` (waits
        for its ack) while the player is in the state and the brain is active."""
        brain = m.brain
        entities = m.entities
        values = brain.think(m.last_tick, entities) if brain is not None else ()
        seq = self.seq = self.seq + 1
        pending = self.pending
        if m.player_id in entities and getattr(brain, "active", True):
            pending.append((seq, now))
            self._awaiting_unflushed += 1
            if len(pending) > MAX_PENDING_INPUTS:
                pending.popleft()
                self.g.counters["inputs_never_acked"] += 1
        elif pending:
            self._abandon_pending()  # the game ignores this player's inputs: no ack to wait for
        return _pack_input(seq, values)

    def _abandon_pending(self) -> None:
        """Stop waiting for the acks of the inputs in flight (match over, left, stalled,
        player inactive): they count neither as acked nor as lost."""
        self.g.counters["inputs_ack_abandoned"] += len(self.pending)
        self.pending.clear()

    # --- the whole life --------------------------------------------------------------------------

    async def run(self) -> None:
        self.lobby.open()
        try:
            while not self.stop.is_set():
                try:
                    if self.lobby.user_id is None:
                        self.state = "lobby"
                        await self.lobby.sign_in()
                    matched = await self.queue()
                    if matched is not None:
                        await self.play(*matched)
                        self.g.counters["matches_played"] += 1
                except LobbyError as exc:
                    self.error(exc.cause)
                    # back off a little: the lobby may be overloaded
                    await sleep_or_stop(self.stop, self.rng.uniform(0.5, 1.5))
                self.state = "lobby"
        finally:
            self.state = "done"
            await self.lobby.close()
