"""`python -m game_server`: run one game node.

    python -m game_server --host 127.0.0.1 --port 8001 --node-id node-1 \
        --public-url http://127.0.0.1:8001 --lobby-url http://127.0.0.1:8000

Secrets come from SEAT_SECRET and NODE_KEY (outside development mode, `ARENA_ENV=dev`,
the node refuses to start without them), limits from the ARENA_* variables of
docs/protocol.md. SIGTERM (or Ctrl-C) drains the node (its matches finish within
ARENA_DRAIN_GRACE or move to another node), then closes every client left with 4030,
aborts the rooms left (their results go to the outbox) and flushes the outbox before exiting.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal

from aiohttp import web

from .app import NODE_KEY, build_app
from .settings import NodeSettings, require_secrets


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m game_server", description="Run a game node.")
    p.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=None, help="listen port (default 8001)")
    p.add_argument("--node-id", default=None, help="this node's id (default node-1)")
    p.add_argument("--public-url", default=None, help="URL clients use (default http://host:port)")
    p.add_argument("--lobby-url", default=None, help="lobby base URL (default: none)")
    p.add_argument("--outbox", default=None, help="outbox SQLite file "
                   "(default var/outbox-<node id>.sqlite3)")
    p.add_argument("--sockjs-test-endpoints", action="store_true",
                   help="also serve the SockJS protocol-test endpoints (/echo, /close, ...)")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


async def ignore_stop_signals(app: web.Application) -> None:
    """Once shutdown has begun, further SIGTERM/SIGINT are ignored: aiohttp would raise
    GracefulExit again in the middle of the outbox flush, leaving the aborted results
    undelivered until the next start (Ctrl-C in a terminal plus a launcher's SIGTERM is
    enough; tests/scale/test_faults.py::test_sigterm_on_a_node)."""
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, ValueError, RuntimeError):
            loop.remove_signal_handler(sig)
            signal.signal(sig, signal.SIG_IGN)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        settings = NodeSettings.from_env(
            host=args.host, port=args.port, node_id=args.node_id, public_url=args.public_url,
            lobby_url=args.lobby_url, outbox_path=args.outbox,
            sockjs_test_endpoints=args.sockjs_test_endpoints or None)
        require_secrets(os.environ, settings.node_id)
    except ValueError as exc:
        raise SystemExit(f"python -m game_server: {exc}") from None
    logging.getLogger("game_server").info(
        "node %s on %s:%d (public %s, lobby %s)", settings.node_id, settings.host, settings.port,
        settings.public_url, settings.lobby_url or "none")
    app = build_app(settings)
    logging.getLogger("game_server").info("games: %s", "; ".join(
        f"{g.name} (modes {', '.join(g.modes)})" for g in app[NODE_KEY].registry.games.values()))
    app.on_shutdown.insert(0, ignore_stop_signals)
    web.run_app(app, host=settings.host, port=settings.port, backlog=settings.listen_backlog,
                shutdown_timeout=settings.shutdown_flush_timeout + 5, print=None,
                access_log=None, loop=new_event_loop(settings.event_loop))


def new_event_loop(name: str) -> asyncio.AbstractEventLoop:
    """A new event loop of the kind `name` (NodeSettings.event_loop)."""
    if name == "uvloop":
        import uvloop
        return uvloop.new_event_loop()
    return asyncio.new_event_loop()


if __name__ == "__main__":
    main()
