"""Build a node's aiohttp `Application` from `NodeSettings`.

Routes: `/play/websocket` (raw binary websocket, registered before SockJS so that it
wins), `/play/...` (SockJS, every transport), `/health`, `/metrics`. Startup starts the
outbox sender and the lobby heartbeats; shutdown (SIGTERM) first drains (drain.py: rooms
about to end finish, the others move to another node, handoff.py), then stops seating,
closes every client with 4030, aborts what is left (results to the outbox) and flushes
the outbox. `/internal/rooms` and `/internal/drain` are the handoff's routes.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from pathlib import Path

from aiohttp import web

from .admission import Admission, AdmissionHandler, guard_app, install_accept_error_handler
from .conformance import add_conformance_routes
from .drain import Drainer
from .drain import add_routes as add_drain_routes
from .handoff import Handoff
from .handoff import add_routes as add_handoff_routes
from .live import live_rooms
from .lobby_client import LobbyClient
from .metrics import Metrics
from .node import Node
from .outbox import Outbox
from .settings import NodeSettings
from .shared_state import NodeShared, PresencePublisher, Snapshot, build_shared
from .sockjs_transport import SockJSManager, add_sockjs_routes, send_body_limit
from .websocket import websocket_route

__all__ = ["NodeSettings", "build_app", "NODE_KEY", "OUTBOX_KEY", "METRICS_KEY"]

log = logging.getLogger(__name__)

NODE_KEY = web.AppKey("node", Node)
OUTBOX_KEY = web.AppKey("outbox", Outbox)
METRICS_KEY = web.AppKey("metrics", Metrics)
LOBBY_KEY = web.AppKey("lobby", LobbyClient)
SETTINGS_KEY = web.AppKey("settings", NodeSettings)
SHARED_KEY = web.AppKey("shared", NodeShared)
PRESENCE_KEY = web.AppKey("presence", PresencePublisher)
ADMISSION_KEY = web.AppKey("admission", Admission)
HANDOFF_KEY = web.AppKey("handoff", Handoff)
DRAINER_KEY = web.AppKey("drainer", Drainer)

CORS = {"Access-Control-Allow-Origin": "*", "Cache-Control": "no-store"}


def build_app(settings: NodeSettings) -> web.Application:
    # keepalive_timeout also runs before the first request: the idle-HTTP timeout.
    # lingering_time 0: a body the node refuses unread (xhr_send) is not drained (aiohttp
    # read up to 10 s of it, 4 KiB at a time); the connection is closed instead.
    # read_bufsize: at most 32 KiB of a body is buffered before reading pauses.
    app = web.Application(handler_args={"keepalive_timeout": settings.http_idle_timeout,
                                        "lingering_time": 0, "read_bufsize": 16 * 1024})
    metrics = Metrics()
    outbox = Outbox(settings.outbox_path, node_id=settings.node_id,
                    node_secret=settings.node_secret, lobby_url=settings.lobby_url,
                    retry_min=settings.outbox_retry_min, retry_max=settings.outbox_retry_max)
    shared = build_shared(settings.redis_url, prefix=settings.redis_prefix,
                          node_id=settings.node_id)
    node = Node(settings, metrics=metrics, record_result=outbox.add, jti=shared.jti)

    def status() -> dict:
        # capacity: the players that fit now, measured (game_server/capacity.py): the lobby
        # places only what fits; no new room at all once the node is full
        players, cap = node.seat_count(), node.capacity
        return {"url": settings.public_url, "capacity": players + cap.room_for(),
                "max_rooms": settings.max_rooms if not cap.full else len(node.rooms),
                "rooms": len(node.rooms), "players": players,
                "draining": node.draining, "modes": node.modes(), "headroom": cap.report(),
                "matches": live_rooms(node),
                # cumulative: the lobby takes what was seated since off its pending counts
                "boot": node.boot, "seated_total": node.seated_total,
                "rooms_total": node.rooms_total}

    lobby = LobbyClient(settings.lobby_url, node_id=settings.node_id,
                        node_secret=settings.node_secret, status=status,
                        interval=settings.heartbeat_interval)

    def presence_snapshot() -> Snapshot:
        return {seat.user_id: (room.match_id, seat.conn is not None)
                for room in node.rooms.values() for seat in room.players.values()}

    handoff = Handoff(node)              # POST /internal/rooms; rooms out when draining
    drainer = Drainer(node, handoff, lobby)  # SIGTERM and POST /internal/drain
    app[HANDOFF_KEY] = handoff
    app[DRAINER_KEY] = drainer
    add_handoff_routes(app, handoff)
    add_drain_routes(app, drainer)

    presence = PresencePublisher(shared.presence, settings.node_id, presence_snapshot,
                                 settings.presence_interval)
    admission = Admission(settings, metrics)
    guard_app(app, admission)         # TCP connections per address, counted at accept
    gate = AdmissionHandler(node, admission)  # what the transports call
    app[ADMISSION_KEY] = admission
    app[SETTINGS_KEY] = settings
    app[SHARED_KEY] = shared
    app[PRESENCE_KEY] = presence
    app[NODE_KEY] = node
    app[OUTBOX_KEY] = outbox
    app[METRICS_KEY] = metrics
    app[LOBBY_KEY] = lobby

    async def health(request: web.Request) -> web.Response:
        body = {"ok": not node.draining, "node_id": settings.node_id, "draining": node.draining,
                **status(), "outbox_pending": outbox.pending_count()}
        return web.json_response(body, status=503 if node.draining else 200, headers=CORS)

    def gauges() -> dict:
        return {**node.gauges(), "outbox_pending": outbox.pending_count()}

    async def metrics_view(request: web.Request) -> web.Response:
        return web.Response(text=metrics.render(gauges), headers=CORS,
                            content_type="text/plain", charset="utf-8")

    app.router.add_get("/health", health)
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/play/websocket", websocket_route(
        gate, max_send_queue=settings.max_send_queue,
        max_message_bytes=settings.max_message_bytes,
        socket_send_buffer=settings.socket_send_buffer, admission=admission, metrics=metrics))
    sockjs = _add_sockjs(app, gate, admission, settings)

    async def on_startup(app: web.Application) -> None:
        install_accept_error_handler(asyncio.get_running_loop(), admission)
        # What exists now (modules, the games, the app) lives as long as the process: out
        # of the cyclic collector's way. A flood of small frames (each parsed message is an
        # object) otherwise triggered full collections over all of it: 100+ ms stalls of
        # the loop that every room shares (python -m game_server.abuse_bench, ping flood).
        gc.collect()
        gc.freeze()
        outbox.start()
        lobby.start()
        presence.start()

    async def on_shutdown(app: web.Application) -> None:
        log.info("node %s shutting down", settings.node_id)
        await drainer.drain("SIGTERM")  # rooms handed off or ended; the rest aborted below
        sockjs.draining = True  # polling responses carry the close frame along
        node.shutdown()
        await asyncio.sleep(0.05)  # let the close frames go out
        await _closes_delivered(sockjs, settings.shutdown_close_timeout)
        if not await outbox.flush(settings.shutdown_flush_timeout):
            log.warning("outbox: %d results still pending; delivered at next start",
                        outbox.pending_count())
        await lobby.close(final=True)
        await presence.close()  # publishes an empty list: this node's players are gone

    async def on_cleanup(app: web.Application) -> None:
        await outbox.close()
        await handoff.close()
        await shared.close()

    app.on_startup.append(on_startup)
    app.on_shutdown.append(on_shutdown)
    app.on_cleanup.append(on_cleanup)
    return app


#: sockjs-client's own bundle, copied from npm by static/build.mjs. SockJS's iframe
#: transports (htmlfile, and eventsource/xhr from another origin in old browsers) load
#: it into a page served by the node, so the node serves it too: no CDN.
SOCKJS_CLIENT_FILE = Path(__file__).resolve().parent.parent / "static" / "build" / "sockjs.min.js"
SOCKJS_CLIENT_PATH = "/play-static/sockjs.min.js"


async def _closes_delivered(manager: SockJSManager, timeout: float) -> None:
    """Wait (up to `timeout`) until every SockJS session's queue, its close frame
    included, has been fetched (polling clients come back over their kept-alive
    connection: `GuardedServer.pre_shutdown`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline and any(s._queue for s in list(manager.sessions.values())):
        await asyncio.sleep(0.02)


def _add_sockjs(app: web.Application, node: AdmissionHandler | Node, admission: Admission,
                settings: NodeSettings) -> SockJSManager:
    async def sockjs_client(request: web.Request) -> web.StreamResponse:
        if not SOCKJS_CLIENT_FILE.is_file():
            raise web.HTTPNotFound(text="run `make setup` to build static/build/sockjs.min.js")
        return web.FileResponse(SOCKJS_CLIENT_FILE, headers={"Cache-Control": "public, max-age=3600"})

    app.router.add_get(SOCKJS_CLIENT_PATH, sockjs_client)
    manager = add_sockjs_routes(
        app, node, prefix="/play", disconnect_delay=settings.sockjs_disconnect_delay,
        max_send_queue=settings.max_send_queue, sockjs_url=SOCKJS_CLIENT_PATH,
        max_sessions=settings.sockjs_max_sessions,
        max_send_body=send_body_limit(settings.max_message_bytes),
        min_session_id=settings.sockjs_min_session_id, admission=admission)
    if settings.sockjs_test_endpoints:
        add_conformance_routes(app, disconnect_delay=settings.sockjs_disconnect_delay)
    return manager
