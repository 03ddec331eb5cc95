"""A room: one match of any registered game, ticked on a drift-free schedule by the node's
`TickGrid`.

The room is generic: the game comes from the node's registry by the token's mode
(`engine.registry`), and the room owns what every game shares: seats and connections,
the input `seq` rule (per connection), the room events (joined, left, match end: codes
1-3), the `welcome.config` room keys, patches and the result. Game events (codes >= 16)
pass through untouched.

Per patch the room encodes the state once as a keyframe and once as a delta against the
previous patch, and writes the same `Frame` to every client in step; a newcomer or a
client whose last frame was refused (backlog full) gets the keyframe instead, so the
latest state always wins. A client refused for `max_send_queue` patches in a row is
closed with 4020.

Seats: a player's seat outlives its connection for the reconnect window (resume token);
a spectator's does not. When no client and no seat is left the room waits
`empty_room_timeout`, then disposes itself.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import math
import secrets
import time
from typing import TYPE_CHECKING

from engine.auth import SeatClaims
from engine.clock import FixedStep, patch_every
from engine.codec import (
    EV_JOINED,
    EV_LEFT,
    EV_MATCH_END,
    PROTOCOL_VERSION,
    Event,
    Input,
    Keyframe,
    Welcome,
    encode,
    encode_delta,
    make_delta,
)
from engine.game import GameDef
from engine.recording import Recorder

from .connection import Connection, Frame

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

__all__ = ["GameFailed", "Room", "Seat", "TickGrid", "encode_delta"]


class GameFailed(Exception):
    """The game raised while its room was being created (config, constructor, first joins):
    the node logs the traceback and closes the join with 4018."""


class TickGrid:
    """The node's tick scheduler: one loop timer per instant for every room due then.

    Rooms tick on a common grid (multiples of dt), so many rooms are due at the same
    instant: one `call_at` runs them all, one after the other, in one loop iteration
    (one epoll per instant for the node, not one per room; no task wake-up per room).
    Then every frame of the instant is written in one run of sends: interleaving each
    room's 16 sends with its Python work (step, delta, encode) costs ~0.4-0.8 µs more
    per send here, the kernel's send path falling out of the CPU caches between rooms.
    A room that raises is aborted on its own (`Room.tick` catches); the others go on.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self._due: dict[int, list[Room]] = {}

    def schedule(self, room: Room, when: float) -> None:
        """`room.tick()` at loop time `when`."""
        key = round(when * 1e6)  # microseconds: the same instant computed two ways
        rooms = self._due.get(key)
        if rooms is None:
            rooms = self._due[key] = []
            self.loop.call_at(when, self._fire, key)
        rooms.append(room)

    def _fire(self, key: int) -> None:
        rooms = self._due.pop(key)
        for room in rooms:
            try:
                room.tick()
            except Exception:  # tick() aborts a failing room itself; never stop the others
                log.exception("room %s: tick failed", room.match_id)
        for room in rooms:
            try:
                room.deliver()
            except Exception:
                log.exception("room %s: delivery failed", room.match_id)


class Seat:
    """A player's (or spectator's) place in a room, independent of its connection."""

    __slots__ = ("room", "player_id", "user_id", "name", "spectator", "conn", "resume_token",
                 "needs_key", "stalls", "expiry", "last_seq")

    def __init__(self, room: Room, player_id: int, user_id: int, name: str, spectator: bool):
        self.room = room
        self.player_id = player_id
        self.user_id = user_id
        self.name = name
        self.spectator = spectator
        self.conn: Connection | None = None
        self.resume_token = "" if spectator else secrets.token_urlsafe(18)
        self.needs_key = True
        self.stalls = 0
        self.expiry: asyncio.TimerHandle | None = None
        self.last_seq = 0   # of this connection's last accepted input (reset on attach)


class Room:
    def __init__(self, node: Node, match_id: str, claims: SeatClaims, seed: int | None = None,
                 *, game: Recorder | None = None):
        """Raises `GameFailed` if the game cannot be built (the node answers 4018). `game`:
        a game restored from another node's snapshot (game_server/handoff.py)."""
        self.node = node
        s = node.settings
        self.match_id = match_id
        self.mode = claims.mode
        self.seed = secrets.randbits(32) if seed is None else seed
        gdef, mode = node.registry.mode(claims.mode)
        self.game_def: GameDef = gdef
        self.input_arity = len(gdef.inputs)
        self._clamp = gdef.clamp
        self._stat_names = tuple(c.name for c in gdef.results)
        self._room_events: list[list] = []   # joined/left since the last patch
        try:  # the node's values, for the fields the mode's config has (GameDef.config)
            config = gdef.config(mode.name, reconnect_window=max(1, math.ceil(s.reconnect_window)),
                                 max_input_rate=s.max_input_rate, **s.game_overrides)
            # the game, recorded as it runs: the replay goes with the result (issue 14)
            self.game = game if game is not None else Recorder(
                gdef.game(config, self.seed), gdef, mode.name, self.seed, config=config,
                match_id=match_id)
            game_keys = dict(self.game.client_config())
        except Exception as e:
            raise GameFailed(f"game {gdef.name!r}, mode {mode.name!r}: {e!r}") from e
        self.config = config
        self.patch_every = patch_every(config.sim_hz, config.patch_hz)
        self.dt = 1.0 / (config.sim_hz * s.time_scale)
        self.max_send_queue = s.max_send_queue
        self.clients: list[Seat] = []            # seats with a live connection, in send order
        self.players: dict[int, Seat] = {}       # player seats (connected or in the window)
        self.by_user: dict[int, Seat] = {}
        self.spectators: set[Seat] = set()
        self.prev_entities: dict = {}
        self.prev_tick = 0
        # the patch built but not yet written (see TickGrid.deliver_soon):
        # (tick, clock, entities, events, delta frame, seconds spent building it)
        self._pending: tuple | None = None
        self.closed = False
        self.frozen = False   # stopped at a tick boundary for a handoff (game_server/handoff.py)
        self.parked = False   # a frozen room's booked tick came: `thaw` books the next one
        self.loop = asyncio.get_running_loop()
        self.grid = node.tick_grid()
        self.empty_since: float | None = self.loop.time()
        # Every room's schedule sits on the node's common grid (multiples of dt): rooms
        # due at the same instant run in one loop iteration (TickGrid).
        self.clock = FixedStep(math.ceil(self.loop.time() / self.dt) * self.dt, self.dt)
        self._overruns = 0
        # welcome.config: the game's keys, then the room's (docs/protocol.md), built once
        self._config_map = {**game_keys, "game": gdef.name, "mode": mode.name,
                            "protocol": PROTOCOL_VERSION, "sim_hz": config.sim_hz,
                            "patch_hz": config.patch_hz, "time_limit": config.time_limit,
                            "max_players": config.max_players,
                            "reconnect_window": config.reconnect_window,
                            "max_input_rate": config.max_input_rate, "match_id": match_id,
                            "schema": gdef.schema()}
        self.on_create(claims)

    # --- lifecycle hooks --------------------------------------------------------------------

    def on_create(self, claims: SeatClaims) -> None:
        """Add the bots the lobby asked for, then start ticking."""
        bots = max(0, min(claims.bots, self.config.max_players - 1))
        try:
            for i in range(bots):
                name = f"Bot {i + 1}"
                self._room_events.append([EV_JOINED, self.game.join(0, name, bot=True), name])
        except Exception as e:
            raise GameFailed(f"game {self.game_def.name!r}, mode {self.mode!r}: bots: {e!r}") from e
        self.node.metrics.rooms_created += 1
        self.grid.schedule(self, self.clock.next_deadline())
        log.info("room %s created: mode=%s seed=%d bots=%d", self.match_id, self.mode, self.seed, bots)

    def on_join(self, seat: Seat) -> None:
        log.info("room %s: %s %r joined (player %d)", self.match_id,
                 "spectator" if seat.spectator else "player", seat.name, seat.player_id)

    def on_leave(self, seat: Seat) -> None:
        log.info("room %s: player %d left", self.match_id, seat.player_id)

    def on_dispose(self) -> None:
        self.node.room_disposed(self)
        self.node.metrics.rooms_disposed += 1
        log.info("room %s disposed at tick %d", self.match_id, self.game.tick)

    # --- seats ------------------------------------------------------------------------------

    def seat_count(self) -> int:
        return len(self.players) + len(self.spectators)

    def join(self, conn: Connection, claims: SeatClaims) -> Seat:
        """Seat a new connection. Raises `GameFull` (the node answers 4014)."""
        if claims.role == "spectator":
            seat = Seat(self, 0, claims.u, claims.n, spectator=True)
            self.spectators.add(seat)
        else:
            existing = self.by_user.get(claims.u) if claims.u else None
            if existing is not None:  # a fresh token for a seat the user holds: same seat
                self.resume(existing, conn)
                return existing
            pid = self.game.join(claims.u, claims.n)
            self._room_events.append([EV_JOINED, pid, claims.n])
            seat = Seat(self, pid, claims.u, claims.n, spectator=False)
            self.players[pid] = seat
            self.node.seated_total += 1   # the lobby's placement counts on it (heartbeats)
            if claims.u:
                self.by_user[claims.u] = seat
            self.node.resume_tokens[seat.resume_token] = seat
        self._attach(seat, conn)
        self.on_join(seat)
        return seat

    def resume(self, seat: Seat, conn: Connection) -> None:
        if seat.expiry is not None:
            seat.expiry.cancel()
            seat.expiry = None
        old = seat.conn
        if old is not None:
            self._detach(seat)
            self.node.reject(old, 4016, "Replaced")
        self._attach(seat, conn)

    def _attach(self, seat: Seat, conn: Connection) -> None:
        seat.conn = conn
        seat.needs_key = True   # the keyframe of the next patch
        seat.stalls = 0
        seat.last_seq = 0       # a new connection numbers its inputs afresh
        conn.state.seat = seat
        self.clients.append(seat)
        self.empty_since = None
        if not seat.spectator:
            self.game.set_connected(seat.player_id, True)
        conn.send(Frame(encode(Welcome(seat.player_id, self.match_id, seat.resume_token,
                                       self.game.tick, self._config_map))))

    def _detach(self, seat: Seat) -> None:
        if seat.conn is not None:
            seat.conn = None
            self.clients.remove(seat)
        self._check_empty()

    def connection_lost(self, seat: Seat, conn: Connection) -> None:
        if seat.conn is not conn:  # replaced or already left
            return
        self._detach(seat)
        if seat.spectator:
            self.spectators.discard(seat)
            if seat.resume_token:  # a moved spectator's token (handoff): one use
                self.node.resume_tokens.pop(seat.resume_token, None)
            self._check_empty()
        elif not self.closed:
            self.game.set_connected(seat.player_id, False)
            seat.expiry = self.loop.call_later(self.node.settings.reconnect_window,
                                               self._expire, seat)

    def _expire(self, seat: Seat) -> None:
        seat.expiry = None
        self.remove(seat)

    def remove(self, seat: Seat) -> None:
        """The seat is gone for good: a `leave` message, or the reconnect window ran out."""
        if seat.expiry is not None:
            seat.expiry.cancel()
            seat.expiry = None
        self._detach(seat)
        if seat.spectator:
            self.spectators.discard(seat)
            if seat.resume_token:
                self.node.resume_tokens.pop(seat.resume_token, None)
        elif self.players.pop(seat.player_id, None) is not None:
            if self.by_user.get(seat.user_id) is seat:
                del self.by_user[seat.user_id]
            self.node.resume_tokens.pop(seat.resume_token, None)
            if not self.closed:
                self.game.leave(seat.player_id)
                self._room_events.append([EV_LEFT, seat.player_id])
            self.on_leave(seat)
        self._check_empty()

    def _check_empty(self) -> None:
        if (self.empty_since is None and not self.clients and not self.players
                and not self.spectators):
            self.empty_since = self.loop.time()

    def submit(self, seat: Seat, msg: Input) -> bool:
        """One input of the right arity (the node checked it): the `seq` rule, then the
        values clamped to the game's input spec. False if dropped (stale `seq`,
        spectator, or refused by the game)."""
        seq = msg.seq
        if seat.spectator or self.closed or self.frozen or seq <= seat.last_seq:
            return False
        seat.last_seq = seq
        return self.game.submit(seat.player_id, seq, self._clamp(msg.values))

    # --- the tick ---------------------------------------------------------------------------

    def tick(self) -> None:
        """Run the steps due now (called by the `TickGrid`), then book the next one.

        A patch is built every `patch_every` steps and written by `deliver` once every
        room of the instant has built its own. A bug here aborts this room only (1011).
        """
        if self.closed:
            return
        if self.frozen:  # booked again when thawed (game_server/handoff.py)
            self.parked = True
            return
        game, clock, metrics, every = self.game, self.clock, self.node.metrics, self.patch_every
        perf = time.perf_counter
        try:
            for _ in range(clock.due(self.loop.time())):
                t0 = perf()
                game.step()
                clock.advance()
                if game.tick % every == 0 or game.over:
                    self._patch(t0)   # observed once written (deliver)
                else:
                    metrics.tick_seconds.observe(perf() - t0)
                metrics.ticks += 1
                if game.over:
                    break
            if clock.overruns != self._overruns:
                metrics.overruns += clock.overruns - self._overruns
                self._overruns = clock.overruns
            if game.over:
                self.finish("finished", game.end_reason)
                return
            timeout = self.node.settings.empty_room_timeout
            if self.empty_since is not None and self.loop.time() - self.empty_since >= timeout:
                log.info("room %s empty for %.0f s", self.match_id, timeout)
                self.finish("aborted", "aborted")
                return
        except Exception:
            log.exception("room %s crashed at tick %d", self.match_id, game.tick)
            self.finish("aborted", "aborted", close=(1011, "Internal error"))
            return
        self.grid.schedule(self, clock.next_deadline())

    def _patch(self, t0: float) -> None:
        """Build this tick's patch (the delta; a keyframe only when written, if needed);
        `deliver` writes it, after every room of the instant built its own (`TickGrid`)."""
        if self._pending is not None:  # catching up: the previous patch goes first
            self.deliver()
        game = self.game
        entities = game.entities()
        events = game.drain_events()   # the game's own (codes >= 16): passed on untouched
        if self._room_events:
            events = self._room_events + events
            self._room_events = []
        tick, clock = game.tick, game.clock
        added, removed, updated = make_delta(self.prev_entities, entities)
        delta = Frame(encode_delta(tick, self.prev_tick, clock, added, removed, updated, events))
        self.prev_entities = entities
        self.prev_tick = tick
        self._pending = (tick, clock, entities, events, delta, time.perf_counter() - t0)

    def deliver(self) -> None:
        """Write the pending patch to every client: the delta to those in step, the
        keyframe to newcomers and to those whose last frame was refused."""
        pending = self._pending
        if pending is None:
            return
        self._pending = None
        t1 = time.perf_counter()
        try:
            self._write(*pending[:5])
        except Exception:
            log.exception("room %s crashed writing tick %d", self.match_id, pending[0])
            self.finish("aborted", "aborted", close=(1011, "Internal error"))
            return
        self.node.metrics.tick_seconds.observe(pending[5] + time.perf_counter() - t1)

    def _write(self, tick: int, clock: int, entities: dict, events: list, delta: Frame) -> None:
        key: Frame | None = None
        n_delta = n_key = 0
        refused: list[tuple[Seat, Connection]] = []
        for seat in tuple(self.clients):  # the hot loop: one send per client, little else
            conn = seat.conn
            if seat.needs_key:
                if key is None:
                    key = Frame(encode(Keyframe(tick, clock, entities, events)))
                if not conn.send(key):
                    refused.append((seat, conn))
                    continue
                seat.needs_key = False
                n_key += 1
            elif conn.send(delta):
                n_delta += 1
            else:
                refused.append((seat, conn))
                continue
            if seat.stalls:
                seat.stalls = 0
        for seat, conn in refused:  # slow clients: a keyframe next time, 4020 at the limit
            seat.needs_key = True
            seat.stalls += 1
            if seat.stalls >= self.max_send_queue:
                self.node.reject(conn, 4020, "Slow consumer")
        m = self.node.metrics
        m.patches += 1
        m.frames_out += n_delta + n_key
        m.bytes_out += n_delta * len(delta.payload) + (n_key * len(key.payload) if key else 0)
        m.queue_drops += len(refused)

    # --- the end ----------------------------------------------------------------------------

    def finish(self, status: str, reason: str, *, close: tuple[int, str] = (1000, "Normal closure")
               ) -> None:
        """End the match: `match_end` to every client, close them, result to the outbox."""
        if self.closed:
            return
        self.deliver()  # the last patch before match_end
        if self.closed:  # writing it failed: already aborted
            return
        self.closed = True  # no more ticks (TickGrid skips a closed room)
        game = self.game
        results = game.results()
        end = Frame(encode(Event(game.tick, [[EV_MATCH_END, reason, [r.row() for r in results]]])))
        stat_names = self._stat_names
        code, why = close
        for seat in tuple(self.clients):
            conn = seat.conn
            seat.conn = None
            conn.send(end)
            if code == 1000:
                self.node.close(conn, 1000, why)
            else:
                self.node.reject(conn, code, why)
        for seat in [*self.players.values(), *self.spectators]:
            if seat.expiry is not None:
                seat.expiry.cancel()
                seat.expiry = None
            self.node.resume_tokens.pop(seat.resume_token, None)
        self.clients.clear()
        metrics = self.node.metrics
        if status == "finished":
            metrics.matches_finished += 1
        else:
            metrics.matches_aborted += 1
        replay = game.finish(status, reason)
        if game.truncated:
            metrics.replays_truncated += 1
        self.node.record_result({
            "match_id": self.match_id,
            "node_id": self.node.settings.node_id,
            "game": self.game_def.name,
            "mode": self.mode,
            "status": status,
            "reason": reason,
            "ticks": game.tick,
            "players": [{"user_id": r.user_id, "name": r.name, "score": r.score,
                         "placement": r.placement, "bot": r.bot,
                         "stats": dict(zip(stat_names, r.stats, strict=False))}  # never lose a result
                        for r in results],
            # what the lobby will find uploaded before this result (docs/protocol.md)
            "replay": {"bytes": len(replay), "sha256": hashlib.sha256(replay).hexdigest(),
                       "truncated": game.truncated},
        }, replay)
        log.info("room %s %s (%s) at tick %d", self.match_id, status, reason, game.tick)
        self.on_dispose()
