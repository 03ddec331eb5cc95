"""The real `sockjs-client` (npm, run by Node.js) against our SockJS endpoints.

Node's sockjs-client offers websocket, xhr-streaming, xhr-polling and eventsource (htmlfile
and jsonp need a browser DOM: test_sockjs_protocol.py covers them over raw HTTP). Skipped
when Node or `node_modules/sockjs-client` is missing (`make setup` installs it; fails
under `CI=true`).
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
from pathlib import Path

import pytest
from aiohttp import web

from engine import codec
from game_server.conformance import build_conformance_app
from game_server.connection import Connection, Frame
from game_server.sockjs_transport import add_sockjs_routes
from tests.services import need

ROOT = Path(__file__).resolve().parents[2]
NODE_MODULES = ROOT / "node_modules"
TRANSPORTS = ["websocket", "xhr-streaming", "xhr-polling", "eventsource"]



@pytest.fixture(autouse=True)
def _node_and_sockjs_client() -> None:
    need(shutil.which("node") and (NODE_MODULES / "sockjs-client").is_dir(),
         "needs node and node_modules/sockjs-client")

SCRIPT = r"""
const SockJS = require('sockjs-client');
const [mode, url, payload, ...transports] = process.argv.slice(2);
function one(t) {
  return new Promise((resolve) => {
    const out = {transport: t, messages: []};
    const timer = setTimeout(() => { out.error = 'timeout'; resolve(out); }, 8000);
    const sock = new SockJS(url, null, {transports: [t]});
    sock.onopen = () => { out.opened = sock.transport; sock.send(payload); };
    sock.onmessage = (e) => {
      out.messages.push(e.data);
      if (mode === 'echo') sock.close(1000, 'bye'); else sock.send('close-me');
    };
    sock.onclose = (e) => { clearTimeout(timer); out.close = [e.code, e.reason]; resolve(out); };
  });
}
(async () => {
  const results = [];
  for (const t of transports) results.push(await one(t));
  console.log(JSON.stringify(results));
})();
"""


async def run_client(tmp_path: Path, mode: str, url: str, payload: str) -> list[dict]:
    script = tmp_path / "client.cjs"
    script.write_text(SCRIPT)
    proc = await asyncio.create_subprocess_exec(
        "node", str(script), mode, url, payload, *TRANSPORTS,
        stdout=asyncio.subprocess.PIPE, env={"NODE_PATH": str(NODE_MODULES), "PATH": "/usr/bin:/bin"})
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    return json.loads(out)


async def test_sockjs_client_echo(aiohttp_server, tmp_path):
    server = await aiohttp_server(build_conformance_app(), host="127.0.0.1")
    results = await run_client(tmp_path, "echo", str(server.make_url("/echo")), "hello é")
    assert [r.get("opened") for r in results] == TRANSPORTS
    for r in results:
        assert r["messages"] == ["hello é"] and r["close"] == [1000, "bye"], r


class GameEcho:
    """Echoes each base64 msgpack message as a Frame; closes 4020 on "close-me"."""

    def __init__(self) -> None:
        self.transports: list[str] = []
        self.lost: list[Connection] = []

    def connection_made(self, conn: Connection) -> None:
        self.transports.append(conn.transport)

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        if data == "close-me":
            conn.close(4020, "Slow consumer")
        else:
            assert isinstance(data, str)
            conn.send(Frame(base64.b64decode(data)))

    def connection_lost(self, conn: Connection) -> None:
        self.lost.append(conn)


async def test_sockjs_client_plays_base64_and_sees_close_codes(aiohttp_server, tmp_path):
    handler = GameEcho()
    app = web.Application()
    add_sockjs_routes(app, handler, prefix="/play")
    server = await aiohttp_server(app, host="127.0.0.1")
    ping = codec.to_text(codec.encode(codec.Ping(42)))
    results = await run_client(tmp_path, "game", str(server.make_url("/play")), ping)
    for r in results:
        assert r.get("opened") == r["transport"], r
        assert r["messages"] == [ping], r
        assert codec.decode_text(r["messages"][0]) == codec.Ping(42)
        assert r["close"] == [4020, "Slow consumer"], r
    assert handler.transports == ["sockjs-websocket", "xhr-streaming", "xhr-polling",
                                  "eventsource"]
    async with asyncio.timeout(5):
        while len(handler.lost) < 4:
            await asyncio.sleep(0.02)
