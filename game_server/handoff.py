"""Handoff: a room's whole state moved to another node, and the match goes on there.

Source (`hand_off`): the room stops at a tick boundary (`Room.frozen`: no step, inputs
dropped), its state is written down (`export_room`: the game's snapshot, the replay
recording so far, every seat with its resume token and reconnect deadline), the lobby
names a target and signs a grant for exactly these bytes (`POST /api/internal/handoff`),
and the bytes go to the target (`POST /internal/rooms`). On the target's 200 the source
sends every client `moved(node_url, resume_token)`, closes it with 4031 and drops the
room without a result: it never ticks again. On anything else it asks the lobby who owns
the match now (`/api/internal/handoff/owner`): still the source, the room thaws and goes
on here; the target, the clients are moved as above.

Target (`receive`): checks the grant (signed by the lobby with this node's key: this
node, this match, this body's SHA-256, fresh), the snapshot's BLAKE2b checksum (in
`engine.snapshot.load`), refuses a match id it has or had (409), restores the game and
the recording, asks the lobby to move the match to itself (`/api/internal/handoff/commit`,
only if the lobby still has it on the source), then starts ticking from the same tick and
answers 200. Until then it ticks nothing, so the match never runs on two nodes; the
result is posted once, by the node that ends the match. Every failure case is in
docs/scale-out.md, "Handoff".
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp
import msgpack
from aiohttp import web

from engine import snapshot
from engine.auth import SeatClaims, sign_request
from engine.clock import FixedStep
from engine.codec import Moved, encode
from engine.grants import GrantError, verify_grant
from engine.recording import Recorder
from engine.replay import ReplayError

from .connection import Frame
from .room import Room, Seat

if TYPE_CHECKING:
    from .node import Node

log = logging.getLogger(__name__)

ROOMS_PATH = "/internal/rooms"
LOBBY_HANDOFF = "/api/internal/handoff"
LOBBY_COMMIT = "/api/internal/handoff/commit"
LOBBY_OWNER = "/api/internal/handoff/owner"
GRANT_HEADER = "X-Arena-Grant"
EXPORT_FORMAT, EXPORT_VERSION = "room", 1
MAX_TRANSFER_BYTES = 16 << 20   # snapshot (<= 4 MiB) + recording (<= 8 MiB) + seats
CLOSE_MOVED = (4031, "Moved")
MOVED_KEPT = 10_000   # moved matches remembered to redirect a late `join`


class TransferError(Exception):
    """A transfer body the target refuses; `status` is the HTTP answer."""

    def __init__(self, status: int, reason: str):
        super().__init__(reason)
        self.status = status
        self.reason = reason


# --- export / import --------------------------------------------------------------------

def export_room(room: Room) -> tuple[bytes, dict[Seat, str]]:
    """The room's state as one msgpack body, and the resume token each connected seat is
    told to use on the target (players keep theirs; each spectator gets a fresh one).
    Call on a frozen room (a tick boundary; its last patch delivered)."""
    rec: Recorder = room.game
    now = room.loop.time()
    window = room.node.settings.reconnect_window
    tokens: dict[Seat, str] = {}
    seats = []
    for seat in [*room.players.values(), *room.spectators]:
        if seat.spectator:
            if seat.conn is None:
                continue
            token = tokens[seat] = secrets.token_urlsafe(18)
        else:
            token = seat.resume_token
            if seat.conn is not None:
                tokens[seat] = token
        # seconds left to reconnect: a connected seat gets the whole window on the target
        left = window if seat.conn is not None or seat.expiry is None else max(
            0.0, seat.expiry.when() - now)
        seats.append([seat.player_id, seat.user_id, seat.name, seat.spectator, token,
                      round(left, 3), seat.last_seq])
    body = msgpack.packb({
        "format": EXPORT_FORMAT, "v": EXPORT_VERSION, "match_id": room.match_id,
        "mode": room.mode, "seed": room.seed, "tick": rec.tick,
        "snapshot": room.game_def.snapshot(rec.game, room._config_map["mode"]),
        "recording": rec.partial(), "seats": seats, "room_events": room._room_events,
    }, use_bin_type=True)
    return body, tokens


@dataclass
class Imported:
    room: Room
    seats: list[list] = field(default_factory=list)


class ImportedRoom(Room):
    """A room restored from another node: no bots added, not ticking until `activate`."""

    def on_create(self, claims: SeatClaims) -> None:
        pass


def _field(d: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    v = d.get(name)
    if not isinstance(v, kind) or isinstance(v, bool) and kind is not bool:
        raise TransferError(400, f"bad transfer body: {name}")
    return v


def import_room(node: Node, data: bytes) -> Imported:
    """A room built from `export_room`'s bytes (not yet ticking nor seated in the node);
    TransferError(400) for anything wrong, checksum included."""
    try:
        d = msgpack.unpackb(data, raw=False, strict_map_key=False)
    except Exception:
        raise TransferError(400, "bad transfer body: not msgpack") from None
    if not isinstance(d, dict) or d.get("format") != EXPORT_FORMAT or d.get("v") != EXPORT_VERSION:
        raise TransferError(400, "bad transfer body: format")
    match_id = _field(d, "match_id", str)
    mode_key = _field(d, "mode", str)
    seed = _field(d, "seed", int)
    seats = _field(d, "seats", list)
    events = _field(d, "room_events", list)
    if mode_key not in node.registry.modes:
        raise TransferError(400, f"mode {mode_key!r} not run here")
    gdef, mode = node.registry.mode(mode_key)
    try:
        restored = snapshot.load(_field(d, "snapshot", bytes), gdef)  # BLAKE2b checked
        if restored.mode.name != mode.name:
            raise TransferError(400, "bad transfer body: snapshot of another mode")
        rec = Recorder.resume(restored.game, gdef, _field(d, "recording", bytes))
    except snapshot.SnapshotError as e:
        raise TransferError(400, f"bad snapshot: {e}") from None
    except ReplayError as e:
        raise TransferError(400, f"bad recording: {e}") from None
    if restored.tick != d.get("tick"):
        raise TransferError(400, "bad transfer body: tick")
    for s in seats:
        if not (isinstance(s, list) and len(s) == 7 and type(s[0]) is int and type(s[1]) is int
                and isinstance(s[2], str) and type(s[3]) is bool and isinstance(s[4], str)
                and 16 <= len(s[4]) <= 256 and isinstance(s[5], (int, float)) and type(s[6]) is int):
            raise TransferError(400, "bad transfer body: seats")
    claims = SeatClaims(u=0, n="", m=match_id, node=node.settings.node_id, role="player",
                        mode=mode_key, seats=0, bots=0, exp=0, jti="")
    try:
        room = ImportedRoom(node, match_id, claims, seed, game=rec)
    except Exception as e:
        raise TransferError(400, f"room not built: {e!r}") from None
    room._room_events = [e for e in events if isinstance(e, list)]
    return Imported(room, seats)


def activate(node: Node, imp: Imported) -> None:
    """Seat the moved seats (each waits for its client within its reconnect window) and
    start ticking from the snapshot's tick."""
    room = imp.room
    window = node.settings.reconnect_window
    for pid, user_id, name, spectator, token, left, last_seq in imp.seats:
        seat = Seat(room, pid, user_id, name, spectator)
        seat.resume_token = token
        seat.last_seq = last_seq
        if spectator:
            room.spectators.add(seat)
        else:
            room.players[pid] = seat
            if user_id:
                room.by_user[user_id] = seat
        node.resume_tokens[token] = seat
        seat.expiry = room.loop.call_later(min(float(left), window), room._expire, seat)
    room.empty_since = None if imp.seats else room.loop.time()
    node.rooms[room.match_id] = room
    room.clock = FixedStep(math.ceil(room.loop.time() / room.dt) * room.dt, room.dt)
    node.metrics.rooms_created += 1
    room.grid.schedule(room, room.clock.next_deadline())
    log.info("room %s moved in at tick %d (%d seats)", room.match_id, room.game.tick,
             len(imp.seats))


# --- source side ------------------------------------------------------------------------

def freeze(room: Room) -> None:
    room.deliver()   # the last patch goes out first
    room.frozen = True


def thaw(room: Room) -> None:
    """The handoff failed: the room goes on here."""
    room.frozen = False
    if room.closed:
        return
    room.clock = FixedStep(math.ceil(room.loop.time() / room.dt) * room.dt, room.dt)
    if room.parked:
        room.parked = False
        room.grid.schedule(room, room.clock.next_deadline())


def moved_away(room: Room, node_url: str, tokens: dict[Seat, str]) -> None:
    """The target has the room: every client is told where to go; the room is dropped
    here without a result (the target posts it) and never ticks again."""
    node = room.node
    room.closed = True
    code, why = CLOSE_MOVED
    for seat in tuple(room.clients):
        conn, seat.conn = seat.conn, None
        token = tokens.get(seat) or (None if seat.spectator else seat.resume_token)
        if token is None:   # a spectator attached during the transfer: re-seated by the lobby
            node.close(conn, code, why)
            continue
        frame = Frame(encode(Moved(node_url, token)))
        urgent = getattr(conn, "send_urgent", None)  # past a full backlog, where supported
        (urgent or conn.send)(frame)
        node.close(conn, code, why)
    for seat in [*room.players.values(), *room.spectators]:
        if seat.expiry is not None:
            seat.expiry.cancel()
            seat.expiry = None
        node.resume_tokens.pop(seat.resume_token, None)
    room.clients.clear()
    # a late `join` here (a lobby token issued before the move) is sent there too
    node.moved[room.match_id] = (node_url, {seat.user_id: seat.resume_token
                                            for seat in room.players.values() if seat.user_id})
    while len(node.moved) > MOVED_KEPT:
        node.moved.pop(next(iter(node.moved)))
    node.metrics.rooms_moved += 1
    node.metrics.players_moved += len(tokens)
    log.info("room %s moved to %s at tick %d", room.match_id, node_url, room.game.tick)
    room.on_dispose()


def redirect(node: Node, conn, claims: SeatClaims) -> bool:
    """A `join` for a match this node handed off: a player with a seat there gets `moved`
    and 4031 (resume there); anyone else 4030 (the lobby knows the new node). False if
    the match was not moved from here."""
    moved = node.moved.get(claims.m)
    if moved is None:
        return False
    url, tokens = moved
    token = tokens.get(claims.u) if claims.role != "spectator" and claims.u else None
    if token is None:
        node.reject(conn, 4030, "Node shutting down")
        return True
    frame = Frame(encode(Moved(url, token)))
    urgent = getattr(conn, "send_urgent", None)
    (urgent or conn.send)(frame)
    node.close(conn, *CLOSE_MOVED)
    node.metrics.players_moved += 1
    return True


class Handoff:
    """One node's handoffs, both ways: `hand_off(room)` as a source, the
    `POST /internal/rooms` route as a target."""

    def __init__(self, node: Node):
        self.node = node
        s = node.settings
        self.lobby_url = s.lobby_url.rstrip("/")
        self.timeout = s.handoff_timeout
        self._session: aiohttp.ClientSession | None = None
        self._receiving: set[str] = set()

    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(force_close=True))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _lobby(self, path: str, body: dict) -> tuple[int, dict]:
        s = self.node.settings
        raw = json.dumps(body, separators=(",", ":")).encode()
        headers = sign_request(s.node_secret, node_id=s.node_id, method="POST", path=path,
                               body=raw, now=time.time())
        headers["Content-Type"] = "application/json"
        async with self.session().post(self.lobby_url + path, data=raw, headers=headers) as resp:
            try:
                data = await resp.json(content_type=None)
            except (ValueError, aiohttp.ContentTypeError):
                data = {}
            return resp.status, data if isinstance(data, dict) else {}

    # --- source -----------------------------------------------------------------------

    async def hand_off(self, room: Room) -> str:
        """Move `room` to the node the lobby names: "moved" once the target has it (the
        clients were told); else it goes on here: "no_target" (the lobby names none, or
        is unreachable), "failed" (export or transfer), "skipped" (closed, under way)."""
        node = self.node
        if not self.lobby_url or room.closed or room.frozen:
            return "skipped"
        m = node.metrics
        t0 = time.perf_counter()
        freeze(room)
        try:
            body, tokens = export_room(room)
        except Exception:
            log.exception("room %s: export failed; it goes on here", room.match_id)
            thaw(room)
            m.handoffs_failed["export"] += 1
            return "failed"
        sha = hashlib.sha256(body).hexdigest()
        try:
            status, answer = await self._lobby(LOBBY_HANDOFF, {"match_id": room.match_id,
                                                               "sha256": sha, "bytes": len(body)})
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            status, answer = 0, {"error": repr(e)}
        if status != 200 or not isinstance(answer.get("url"), str):
            log.warning("room %s: no handoff target (%s %s); it goes on here", room.match_id,
                        status, answer.get("error", ""))
            thaw(room)
            m.handoffs_failed["no_target"] += 1
            return "no_target"
        target_id, url, grant = answer.get("node_id"), answer["url"].rstrip("/"), answer.get("grant", "")
        ok = False
        try:
            async with self.session().post(url + ROOMS_PATH, data=body, headers={
                    GRANT_HEADER: grant, "Content-Type": "application/msgpack"}) as resp:
                ok = resp.status == 200
                why = f"{resp.status} {(await resp.text())[:200]}"
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            why = f"{type(e).__name__}: {e}"
        if not ok:
            # Did the target commit before its answer was lost? The lobby knows.
            owner = await self._owner(room.match_id)
            if owner == target_id:
                log.warning("room %s: target %s answered %s but owns the match", room.match_id,
                            target_id, why)
                ok = True
            else:
                log.warning("room %s: handoff to %s failed (%s); it goes on here",
                            room.match_id, target_id, why)
                thaw(room)
                m.handoffs_failed["transfer"] += 1
                return "failed"
        if not room.closed:   # (a frozen room cannot end meanwhile)
            moved_away(room, url, tokens)
        m.handoff_seconds.observe(time.perf_counter() - t0)
        return "moved"

    async def _owner(self, match_id: str) -> str | None:
        try:
            status, answer = await self._lobby(LOBBY_OWNER, {"match_id": match_id})
        except (TimeoutError, aiohttp.ClientError, OSError):
            return None
        return answer.get("node_id") if status == 200 else None

    # --- target -----------------------------------------------------------------------

    async def receive(self, request: web.Request) -> web.Response:
        """POST /internal/rooms: the body of `export_room`, the lobby's grant in
        X-Arena-Grant. 200 once the room ticks here."""
        node, s = self.node, self.node.settings
        m = node.metrics
        if node.draining:
            return _refuse(m, 503, "draining")
        if request.content_length is not None and request.content_length > MAX_TRANSFER_BYTES:
            return _refuse(m, 413, "transfer too large")
        try:
            grant = verify_grant(s.node_secret, request.headers.get(GRANT_HEADER, ""),
                                 node_id=s.node_id, now=time.time())
        except GrantError as e:
            return _refuse(m, 403, str(e))
        body = await read_body(request, MAX_TRANSFER_BYTES)
        if body is None:
            return _refuse(m, 413, "transfer too large")
        if hashlib.sha256(body).hexdigest() != grant.sha:
            return _refuse(m, 400, "checksum mismatch")
        if grant.m in node.rooms or grant.m in node.ended or grant.m in self._receiving:
            return _refuse(m, 409, "match already here")
        self._receiving.add(grant.m)
        try:
            try:
                imp = import_room(node, body)
            except TransferError as e:
                return _refuse(m, e.status, e.reason)
            if imp.room.match_id != grant.m:
                return _refuse(m, 400, "body of another match")
            try:
                status, answer = await self._lobby(LOBBY_COMMIT, {
                    "grant": request.headers.get(GRANT_HEADER, "")})
            except (TimeoutError, aiohttp.ClientError, OSError) as e:
                status, answer = 0, {"error": repr(e)}
            if status != 200:
                return _refuse(m, 503, f"lobby did not commit: {status} {answer.get('error', '')}")
            if node.draining:
                # the lobby has it here now: run it anyway (this node's own drain moves it on)
                log.warning("room %s: arrived while draining", grant.m)
            activate(node, imp)
            m.handoffs_received += 1
            return web.json_response({"ok": True, "tick": imp.room.game.tick})
        finally:
            self._receiving.discard(grant.m)


async def read_body(request: web.Request, limit: int) -> bytes | None:
    """The request body, or None past `limit` bytes."""
    parts, n = [], 0
    while chunk := await request.content.read(64 * 1024):
        n += len(chunk)
        if n > limit:
            return None
        parts.append(chunk)
    return b"".join(parts)


def _refuse(metrics, status: int, reason: str) -> web.Response:
    metrics.handoffs_refused[str(status)] += 1
    log.warning("handoff refused: %d %s", status, reason)
    return web.json_response({"error": reason}, status=status)


def add_routes(app: web.Application, handoff: Handoff) -> None:
    app.router.add_post(ROOMS_PATH, handoff.receive)
