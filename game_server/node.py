"""The node's `ConnectionHandler`: seats connections in rooms and enforces the protocol.

Every transport calls `connection_made`, `message_received` and `connection_lost`; the
node never raises back into a transport. Each refusal is an `error` message followed by
a close with the same code (docs/protocol.md, "Close codes and limits"), and touches
nothing but the offending connection.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from collections import Counter, OrderedDict
from collections.abc import Callable

from engine.auth import SeatClaims, TokenError, verify_seat_token
from engine.codec import (
    DecodeError,
    Error,
    Input,
    Join,
    Leave,
    Ping,
    Pong,
    Resume,
    decode,
    decode_any,
    encode,
)
from engine.game import GameFull
from engine.registry import Registry, load, registry

from .capacity import Capacity
from .connection import Connection, Frame
from .handoff import redirect
from .metrics import Metrics
from .room import GameFailed, Room, Seat, TickGrid
from .settings import NodeSettings
from .shared_state import InProcessJti, JtiStore

log = logging.getLogger(__name__)

ENDED_MATCHES_KEPT = 10_000   # match ids remembered to answer a late `join` with 4040


class Client:
    """Per-connection state (`Connection.state`)."""

    __slots__ = ("seat", "joining", "timer", "tokens", "stamp", "other_tokens", "other_stamp")

    def __init__(self, now: float, burst: float, other_burst: float):
        self.seat: Seat | None = None
        self.joining = False    # a `join` waits for the jti store
        self.timer: asyncio.TimerHandle | None = None
        self.tokens = burst
        self.stamp = now
        self.other_tokens = other_burst
        self.other_stamp = now


class Node:
    def __init__(self, settings: NodeSettings, *, metrics: Metrics | None = None,
                 record_result: Callable[..., None] | None = None,
                 wall_clock: Callable[[], float] = time.time, jti: JtiStore | None = None,
                 games: Registry | None = None):
        self.settings = settings
        # the games this node hosts: `games`, else `settings.games` (a GAMES-style list of
        # packages), else the process-wide registry (engine.registry: GAMES or the default)
        self.registry: Registry = (games if games is not None
                                   else load(settings.games) if settings.games else registry())
        self.metrics = metrics or Metrics()
        self._record = record_result
        self.now = wall_clock
        self.rooms: dict[str, Room] = {}
        self.ended: OrderedDict[str, None] = OrderedDict()
        # used seat-token ids: `app[SHARED_KEY].jti` (in-process, or Redis with REDIS_URL)
        self.jti: JtiStore = jti if jti is not None else InProcessJti()
        self._joins: set[asyncio.Task] = set()
        self.resume_tokens: dict[str, Seat] = {}
        self.connections: set[Connection] = set()
        self.draining = False   # no new room (drain.py); seats in rooms still here are served
        self.closing = False    # shutting down: every connection is refused
        # match id -> (target url, {user id: resume token}) of rooms handed off (handoff.py)
        self.moved: dict[str, tuple[str, dict[int, str]]] = {}
        self._grid: TickGrid | None = None
        self._max_message = settings.max_message_bytes
        self._rate = float(settings.max_input_rate)
        self._burst = 2.0 * settings.max_input_rate        # at join
        self._credit = settings.input_window * settings.max_input_rate  # earned by quiet
        self._other_rate = float(settings.max_other_rate)
        self._other_burst = 2.0 * settings.max_other_rate
        # measured headroom (game_server/capacity.py): sampled from the first connection on
        self.capacity = Capacity(budget=settings.cpu_budget, window=settings.capacity_window,
                                 max_players=settings.max_players, metrics=self.metrics,
                                 players=self.seat_count)
        self._sampler: asyncio.TimerHandle | None = None
        # what the lobby's placement counts on (heartbeats, /metrics): this process's id,
        # the fresh player seats and the rooms it created for seat tokens since it started
        # (not resumes, a fresh token for a seat held, spectators, bots, rooms moved here)
        self.boot = secrets.token_hex(8)
        self.seated_total = 0
        self.rooms_total = 0

    def modes(self) -> list[str]:
        """The mode names this node runs (heartbeats, /health)."""
        return list(self.registry.modes)

    def tick_grid(self) -> TickGrid:
        loop = asyncio.get_running_loop()
        if self._grid is None or self._grid.loop is not loop:
            self._grid = TickGrid(loop)
        return self._grid

    # --- results ----------------------------------------------------------------------------

    def record_result(self, result: dict, replay: bytes | None = None) -> None:
        """The result (and the match's replay file) to the outbox."""
        if self._record is None:
            log.warning("no outbox: result of %s dropped", result["match_id"])
        elif replay is None:
            self._record(result)
        else:
            self._record(result, replay)

    def room_disposed(self, room: Room) -> None:
        if self.rooms.get(room.match_id) is room:
            del self.rooms[room.match_id]
        self.ended[room.match_id] = None
        while len(self.ended) > ENDED_MATCHES_KEPT:
            self.ended.popitem(last=False)

    # --- gauges -----------------------------------------------------------------------------

    def seat_count(self) -> int:
        return sum(room.seat_count() for room in self.rooms.values())

    def gauges(self) -> dict:
        by_transport: Counter[str] = Counter(c.transport for c in self.connections)
        return {"rooms": len(self.rooms), "players_by_transport": dict(by_transport),
                "seats": self.seat_count(), "draining": self.draining,
                "capacity": self.capacity.report(), "boot": self.boot,
                "seated_total": self.seated_total, "rooms_total": self.rooms_total}

    # --- closing ----------------------------------------------------------------------------

    def reject(self, conn: Connection, code: int, reason: str) -> None:
        """`error(code, reason)`, then close with the same code."""
        if conn.closed:
            return
        frame = Frame(encode(Error(code, reason)))
        urgent = getattr(conn, "send_urgent", None)  # past a full backlog, where supported
        if urgent is not None:
            urgent(frame)
        else:
            conn.send(frame)
        self.close(conn, code, reason)

    def close(self, conn: Connection, code: int, reason: str) -> None:
        if conn.closed:
            return
        self.metrics.closed_by_code[code] += 1
        st: Client | None = conn.state
        if st is not None and st.timer is not None:
            st.timer.cancel()
            st.timer = None
        conn.close(code, reason)

    # --- ConnectionHandler ----------------------------------------------------------------

    def _sample_capacity(self) -> None:
        self.capacity.sample()
        self._sampler = asyncio.get_running_loop().call_later(
            self.settings.capacity_interval, self._sample_capacity)

    def connection_made(self, conn: Connection) -> None:
        loop = asyncio.get_running_loop()
        if self._sampler is None:
            self._sampler = loop.call_later(self.settings.capacity_interval,
                                            self._sample_capacity)
        self.metrics.connections += 1
        st = conn.state = Client(time.monotonic(), self._burst, self._other_burst)
        self.connections.add(conn)
        if self.closing:
            self.reject(conn, 4030, "Node shutting down")
            return
        st.timer = loop.call_later(self.settings.join_timeout, self._join_timeout, conn)

    def _join_timeout(self, conn: Connection) -> None:
        st: Client = conn.state
        st.timer = None
        if st.seat is None:
            self.reject(conn, 4005, "Join timeout")

    def connection_lost(self, conn: Connection) -> None:
        self.connections.discard(conn)
        st: Client | None = conn.state
        if st is None:
            return
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None
        seat = st.seat
        if seat is not None:
            st.seat = None
            seat.room.connection_lost(seat, conn)

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        if conn.closed:
            return
        try:
            self._message(conn, data)
        except Exception:  # a bug must cost one connection, never the node
            log.exception("message from %s", conn.remote)
            self.reject(conn, 4001, "Bad message")

    def _message(self, conn: Connection, data: bytes | str) -> None:
        try:
            msg = (decode(data, self._max_message) if type(data) is bytes
                   else decode_any(data, self._max_message))
        except DecodeError as e:
            self.reject(conn, e.code, e.reason)
            return
        st: Client = conn.state
        seat = st.seat
        kind = type(msg)
        if kind is Input:
            if seat is None:
                if not st.joining:  # (sent right after `join`: dropped, not punished)
                    self.reject(conn, 4006, "Protocol violation")
                return
            room = seat.room
            if len(msg.values) != room.input_arity:  # not this game's input
                self.reject(conn, 4001, "Bad message")
                return
            now = time.monotonic()  # (asyncio.get_running_loop() calls getpid() on 3.11)
            # A token bucket holding up to `input_window` seconds of inputs: the rate is
            # judged over that window, so a burst of honest inputs the network held back
            # (as much as the quiet before it earned) passes; a sustained excess is 4004.
            tokens = min(self._credit, st.tokens + (now - st.stamp) * self._rate)
            st.stamp = now
            if tokens < 1.0:
                self.reject(conn, 4004, "Input flood")
                return
            st.tokens = tokens - 1.0
            self.metrics.inputs += 1
            if not room.submit(seat, msg):
                self.metrics.rejected_inputs += 1
            return
        # Everything else is rare: its own bucket.
        now = time.monotonic()
        tokens = min(self._other_burst, st.other_tokens + (now - st.other_stamp) * self._other_rate)
        st.other_stamp = now
        if tokens < 1.0:
            self.reject(conn, 4004, "Input flood")
            return
        st.other_tokens = tokens - 1.0
        if kind is Ping:
            tick = seat.room.game.tick if seat is not None else 0
            conn.send(Frame(encode(Pong(msg.t, tick))))
        elif kind is Join or kind is Resume:
            if seat is not None or st.joining:
                self.reject(conn, 4006, "Protocol violation")
            elif kind is Join:
                self._start_join(conn, msg.token)
            else:
                self._resume(conn, msg.token)
        elif kind is Leave:
            if seat is None:
                self.reject(conn, 4006, "Protocol violation")
                return
            st.seat = None
            seat.room.remove(seat)
            self.close(conn, 1000, "Normal closure")
        else:  # a server-to-client type sent by a client
            self.reject(conn, 4003, "Unknown message type")

    # --- seating ----------------------------------------------------------------------------

    def _start_join(self, conn: Connection, token: str) -> None:
        """Check the token's signature now; claim its `jti` in the store (awaited: Redis
        with REDIS_URL), then seat. Meanwhile the client's inputs are dropped and a second
        `join`/`resume` is 4006."""
        s = self.settings
        now = self.now()
        try:
            claims = verify_seat_token(s.seat_secret, token, node_id=s.node_id, now=now)
        except TokenError as e:
            self.reject(conn, e.code, e.reason)
            return
        st: Client = conn.state
        st.joining = True
        task = asyncio.get_running_loop().create_task(self._join(conn, claims, now))
        self._joins.add(task)
        task.add_done_callback(self._joins.discard)

    async def _join(self, conn: Connection, claims: SeatClaims, now: float) -> None:
        st: Client = conn.state
        try:
            fresh = await self.jti.claim(claims.jti, claims.exp, now)
        except Exception:  # the store is unreachable (Redis down): no seat without the check
            log.warning("jti store unreachable; join of %s refused", conn.remote, exc_info=True)
            st.joining = False
            self.reject(conn, 1011, "Internal error")
            return
        st.joining = False
        if conn.closed:  # gone meanwhile (join timeout, disconnect): the jti is used up
            return
        try:
            self._seat(conn, claims, fresh)
        except Exception:  # a bug must cost one connection, never the node
            log.exception("join from %s", conn.remote)
            self.reject(conn, 4001, "Bad message")

    def _seat(self, conn: Connection, claims: SeatClaims, fresh: bool) -> None:
        s = self.settings
        if not fresh:
            self.reject(conn, 4012, "Token already used")
            return
        if claims.mode not in self.registry.modes:  # a mode this node does not run
            self.reject(conn, 4010, "Invalid token")
            return
        if claims.m in self.moved and redirect(self, conn, claims):
            return
        if claims.m in self.ended:
            self.reject(conn, 4040, "Match over")
            return
        room = self.rooms.get(claims.m)
        if self.draining and (room is None or room.frozen or claims.role == "spectator"
                              or claims.u not in room.by_user):
            self.reject(conn, 4030, "Node shutting down")  # a seat held here is served
            return
        if self.seat_count() >= s.max_players:
            self.reject(conn, 4014, "Node full")
            return
        if room is None:
            if len(self.rooms) >= s.max_rooms:
                self.reject(conn, 4014, "Node full")
                return
            # near the CPU budget the newest work is refused, never the running rooms
            _, mode = self.registry.mode(claims.mode)
            if not self.capacity.accepts_room(mode.max_players):
                self.reject(conn, 4014, "Node full: no CPU headroom")
                return
            try:
                room = self._create_room(claims)
            except GameFailed:
                log.exception("room %s: the game failed to start; join of %s closed 4018",
                              claims.m, conn.remote)
                self.reject(conn, 4018, "Game failed")
                return
            self.rooms[claims.m] = room
            self.rooms_total += 1
        try:
            room.join(conn, claims)   # (counts a new player seat in seated_total)
        except GameFull:
            self.reject(conn, 4014, "Node full")
            return
        self._seated(conn)

    def _create_room(self, claims: SeatClaims) -> Room:
        return Room(self, claims.m, claims)

    def _resume(self, conn: Connection, token: str) -> None:
        seat = self.resume_tokens.get(token)
        if seat is None or seat.room.closed:
            self.reject(conn, 4015, "Resume failed")
            return
        seat.room.resume(seat, conn)
        self._seated(conn)

    def _seated(self, conn: Connection) -> None:
        st: Client = conn.state
        if st.timer is not None:
            st.timer.cancel()
            st.timer = None

    # --- shutdown ---------------------------------------------------------------------------

    def shutdown(self) -> None:
        """Stop seating; abort every room (clients get 4030, results go to the outbox)."""
        self.draining = self.closing = True
        if self._sampler is not None:
            self._sampler.cancel()
        for room in list(self.rooms.values()):
            room.finish("aborted", "aborted", close=(4030, "Node shutting down"))
        for conn in list(self.connections):
            self.reject(conn, 4030, "Node shutting down")
