"""The standard SockJS protocol-test endpoints (as sockjs-protocol's test server has them).

- `/echo`: every message comes back as sent;
- `/close`: every session is closed at once with `c[3000,"Go away!"]`;
- `/disabled_websocket_echo`: echo, websocket transport off;
- `/cookie_needed_echo`: echo, `cookie_needed` on (JSESSIONID set on session URLs).

Streaming responses end after 4096 bytes, as the protocol tests expect. Built on the same
`add_sockjs_routes` as the game's `/play`, so the tests exercise the node's SockJS code.
The node mounts it with `--sockjs-test-endpoints`; alone:
`python -m game_server.conformance --port 8081`.
"""

from __future__ import annotations

import argparse
import base64

from aiohttp import web

from .connection import Connection
from .sockjs_transport import add_sockjs_routes

RESPONSE_LIMIT = 4096  # bytes per streaming response on the test endpoints


class EchoHandler:
    """Sends each SockJS text message back; a binary websocket frame comes back base64."""

    def connection_made(self, conn: Connection) -> None:
        pass

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        if isinstance(data, bytes):
            data = base64.b64encode(data).decode()
        send_text = getattr(conn, "send_text", None)  # SockJS sessions, the raw websocket
        if send_text is not None:
            send_text(data)

    def connection_lost(self, conn: Connection) -> None:
        pass


class CloseHandler(EchoHandler):
    """Closes each session as soon as it opens."""

    def connection_made(self, conn: Connection) -> None:
        conn.close(3000, "Go away!")


def add_conformance_routes(app: web.Application, *, disconnect_delay: float = 5.0,
                           heartbeat_delay: float = 25.0) -> None:
    """Mount the four protocol-test endpoints on `app`."""
    common = {"disconnect_delay": disconnect_delay, "heartbeat_delay": heartbeat_delay,
              "response_limit": RESPONSE_LIMIT, "raw_websocket": True}
    add_sockjs_routes(app, EchoHandler(), prefix="/echo", name="echo", **common)
    add_sockjs_routes(app, CloseHandler(), prefix="/close", name="close", **common)
    add_sockjs_routes(app, EchoHandler(), prefix="/disabled_websocket_echo",
                      name="disabled_websocket_echo", disable_transports=("websocket",),
                      **common)
    add_sockjs_routes(app, EchoHandler(), prefix="/cookie_needed_echo",
                      name="cookie_needed_echo", cookie_needed=True, **common)


def build_conformance_app(*, disconnect_delay: float = 5.0,
                          heartbeat_delay: float = 25.0) -> web.Application:
    """An application serving only the protocol-test endpoints."""
    app = web.Application()
    add_conformance_routes(app, disconnect_delay=disconnect_delay,
                           heartbeat_delay=heartbeat_delay)
    return app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    args = parser.parse_args(argv)
    web.run_app(build_conformance_app(), host=args.host, port=args.port)


if __name__ == "__main__":
    main()
