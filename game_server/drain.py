"""Drain: a node stops taking new rooms and empties itself without ending its matches.

Started by SIGTERM (the app's shutdown, before the rooms are aborted) or by a signed
`POST /internal/drain` (an operator, the lobby admin's "drain node" action). The node
says `draining` in its heartbeats at once (the lobby places no new match on it, and
refuses new joins of new rooms with 4030); then, for each room:

- a room whose time limit falls within `drain_grace` seconds finishes here;
- any other is handed off (game_server/handoff.py); one whose transfer fails (the target
  refused it or died) goes on here and is tried again every `HANDOFF_RETRY` seconds;
- one with no target (the lobby names none: a single node, every other draining or
  full; or the lobby is unreachable) is aborted at once, as before the handoff existed
  (4030, its result flushed as aborted);
- past `drain_grace`, what is left is aborted the same way (`Node.shutdown`).

With `handoff` off (ARENA_HANDOFF=0), or no lobby, no room is handed off: a room that
ends within the grace finishes, the others are aborted at once.
docs/game_server.md, "Drain".
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import TYPE_CHECKING

from aiohttp import web

from engine.auth import REQUEST_MAX_SKEW, verify_request

from .handoff import Handoff, read_body

if TYPE_CHECKING:
    from .lobby_client import LobbyClient
    from .node import Node
    from .room import Room

log = logging.getLogger(__name__)

DRAIN_PATH = "/internal/drain"
HANDOFF_RETRY = 1.0      # seconds between two handoff attempts of a room that stayed
HANDOFFS_AT_ONCE = 8     # concurrent handoffs of one draining node


def seconds_left(room: Room) -> float | None:
    """Wall seconds until the room's time limit (None: it has none)."""
    cfg = room.config
    limit = getattr(cfg, "time_limit", None)
    if not limit:
        return None
    return max(0.0, limit * cfg.sim_hz - room.game.tick) * room.dt


def abort(room: Room) -> None:
    room.finish("aborted", "aborted", close=(4030, "Node shutting down"))


class Drainer:
    def __init__(self, node: Node, handoff: Handoff, lobby: LobbyClient | None = None):
        self.node = node
        self.handoff = handoff
        self.lobby = lobby
        self._task: asyncio.Task | None = None
        self._nonces: dict[str, float] = {}

    def start(self, why: str) -> asyncio.Task:
        """Begin draining (once); the task ends when no room is left or at the grace."""
        if self._task is None:
            log.info("node %s draining (%s): %d rooms", self.node.settings.node_id, why,
                     len(self.node.rooms))
            self.node.draining = True
            self._task = asyncio.get_running_loop().create_task(self._drain(), name="drain")
        return self._task

    async def drain(self, why: str) -> None:
        await asyncio.shield(self.start(why))

    async def _drain(self) -> None:
        node, s = self.node, self.node.settings
        loop = asyncio.get_running_loop()
        deadline = loop.time() + s.drain_grace
        if self.lobby is not None:
            await self.lobby.beat()   # `draining` reaches the lobby now, not at the next beat
        gate = asyncio.Semaphore(HANDOFFS_AT_ONCE)
        tried: dict[str, float] = {}   # match id -> loop time its last attempt ended
        busy: set[str] = set()         # match ids being handed off
        running: set[asyncio.Task] = set()

        async def move(room: Room) -> None:
            try:
                async with gate:   # (one queued past the grace is left to the abort)
                    if (not room.closed and loop.time() < deadline
                            and await self.handoff.hand_off(room) == "no_target"):
                        abort(room)
            finally:
                busy.discard(room.match_id)
                tried[room.match_id] = loop.time()

        can_move = bool(s.handoff and self.handoff.lobby_url)
        while node.rooms and loop.time() < deadline:
            for room in list(node.rooms.values()):
                left = seconds_left(room)
                if room.closed or room.frozen or (left is not None
                                                  and left <= deadline - loop.time()):
                    continue   # it ends within the grace: here
                if not can_move:
                    abort(room)
                    continue
                last = tried.get(room.match_id)
                if room.match_id in busy or (last is not None
                                             and loop.time() - last < HANDOFF_RETRY):
                    continue
                busy.add(room.match_id)
                task = loop.create_task(move(room))
                running.add(task)
                task.add_done_callback(running.discard)
            if not node.rooms:
                break
            await asyncio.sleep(0.05)
        if running:  # a transfer under way finishes (bounded by handoff_timeout)
            await asyncio.wait(running, timeout=s.handoff_timeout * 3 + 1)
        log.info("node %s drained: %d rooms left, aborted", s.node_id, len(node.rooms))
        node.shutdown()   # past the grace: what is left is aborted (4030), as without handoff

    # --- POST /internal/drain -------------------------------------------------------------

    async def request(self, request: web.Request) -> web.Response:
        """Signed with this node's key (engine.auth.sign_request, X-Arena-Node = this
        node's id): 202, draining begins; 403 otherwise."""
        s = self.node.settings
        body = await read_body(request, 4096)
        now = time.time()
        try:
            if body is None:
                raise ValueError("body too large")
            node_id, nonce = verify_request(s.node_secret, headers=request.headers,
                                            method="POST", path=DRAIN_PATH, body=body, now=now)
            if node_id != s.node_id:
                raise ValueError("signed for another node")
            self._nonces = {n: t for n, t in self._nonces.items() if now - t < 2 * REQUEST_MAX_SKEW}
            if nonce in self._nonces:
                raise ValueError("replayed nonce")
            self._nonces[nonce] = now
        except ValueError as e:
            self.node.metrics.refused["drain_request"] += 1
            return web.json_response({"error": f"forbidden: {e}"}, status=403)
        self.start("drain request")
        return web.json_response({"draining": True, "rooms": len(self.node.rooms),
                                  "grace": s.drain_grace}, status=202)


def add_routes(app: web.Application, drainer: Drainer) -> None:
    app.router.add_post(DRAIN_PATH, drainer.request)
