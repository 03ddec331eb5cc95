"""Fixtures for the node tests: a real node on 127.0.0.1 and real websocket clients."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestServer

from engine import codec
from engine.auth import issue_seat_token
from game_server.app import NODE_KEY, OUTBOX_KEY, build_app
from game_server.settings import DEV_SEAT_SECRET, NodeSettings

NODE_ID = "node-1"
#: Node settings that keep the tests fast (every limit still applies).
FAST = {"game_overrides": {"patch_hz": 30}, "join_timeout": 2.0, "reconnect_window": 2.0,
        "empty_room_timeout": 5.0, "shutdown_flush_timeout": 1.0}


def token(match: str = "m1", user: int = 1, name: str = "Ann", *, node: str = NODE_ID,
          mode: str = "sprint", bots: int = 0, role: str = "player", ttl: int = 30,
          secret: str = DEV_SEAT_SECRET, now: float | None = None, jti: str | None = None) -> str:
    return issue_seat_token(secret, user_id=user, name=name, match_id=match, node_id=node,
                            now=time.time() if now is None else now, ttl=ttl, role=role,
                            mode=mode, bots=bots, jti=jti)


class Closed(Exception):
    def __init__(self, code: int | None, error: codec.Error | None):
        super().__init__(f"closed {code} {error}")
        self.code = code
        self.error = error


class Client:
    """A websocket game client speaking the binary protocol, for any game: inputs and
    entity fields by the names of the schema in its `welcome`."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse):
        self.ws = ws
        self.error: codec.Error | None = None
        self.entities: dict = {}
        self.tick = -1
        self.seq = 0
        self.welcome: codec.Welcome | None = None

    async def send(self, msg: codec.Message) -> None:
        await self.ws.send_bytes(codec.encode(msg))

    async def send_raw(self, data: bytes | str) -> None:
        if isinstance(data, str):
            await self.ws.send_str(data)
        else:
            await self.ws.send_bytes(data)

    @property
    def schema(self) -> dict:
        assert self.welcome is not None, "not seated"
        return self.welcome.config["schema"]

    def input_values(self, *values: int, **named: int) -> tuple[int, ...]:
        """Values in the game's input order, or by name (unnamed fields are 0). Before
        the `welcome` (no schema yet) the values go as given."""
        if self.welcome is None:
            return values or tuple(named.values())
        names = [f["name"] for f in self.schema["inputs"]]
        if named:
            assert not values and set(named) <= set(names), (named, names)
            return tuple(named.get(n, 0) for n in names)
        return values or (0,) * len(names)

    async def input(self, *values: int, **named: int) -> int:
        """Send the next input (`seq` + 1); returns its seq."""
        self.seq += 1
        await self.send(codec.Input(self.seq, self.input_values(*values, **named)))
        return self.seq

    def index(self, kind: int, name: str) -> int:
        """The tuple index of field `name` of entity kind `kind` (the kind is index 0)."""
        [e] = [e for e in self.schema["entities"] if e["kind"] == kind]
        return 1 + e["fields"].index(name)

    def field(self, eid: int, name: str, entities: dict | None = None):
        """Field `name` of entity `eid` (in the state held, or in `entities`)."""
        ent = (self.entities if entities is None else entities)[eid]
        return ent[self.index(ent[0], name)]

    def ack(self, eid: int | None = None) -> int:
        """The `ack` field of a player entity (default: this client's own)."""
        ent = self.entities[self.welcome.player_id if eid is None else eid]
        [e] = [e for e in self.schema["entities"] if e["kind"] == ent[0]]
        return ent[1 + e["fields"].index(e["ack"])]

    async def recv(self, timeout: float = 3.0) -> codec.Message:
        msg = await self.ws.receive(timeout)
        if msg.type in (WSMsgType.BINARY, WSMsgType.TEXT):
            data = msg.data
            m = codec.decode_any(data, max_size=1 << 22)
            if isinstance(m, codec.Error):
                self.error = m
            elif isinstance(m, codec.Welcome):
                self.welcome = m
            elif isinstance(m, codec.Keyframe):
                self.entities, self.tick = dict(m.entities), m.tick
            elif isinstance(m, codec.Delta) and m.base == self.tick:
                self.entities = codec.apply_delta(self.entities, m.added, m.removed, m.updated)
                self.tick = m.tick
            return m
        raise Closed(self.ws.close_code, self.error)

    async def expect(self, kind: type, timeout: float = 3.0) -> codec.Message:
        """Read until a message of `kind` (others are applied and skipped)."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                raise TimeoutError(f"no {kind.__name__} within {timeout} s")
            m = await self.recv(left)
            if isinstance(m, kind):
                return m

    async def closed(self, timeout: float = 3.0) -> int | None:
        """Read until the node closes; the close code (the `error` is in self.error)."""
        deadline = asyncio.get_running_loop().time() + timeout
        try:
            while True:
                left = deadline - asyncio.get_running_loop().time()
                if left <= 0:
                    raise TimeoutError("still open")
                await self.recv(left)
        except Closed as c:
            return c.code

    async def join(self, tok: str) -> codec.Welcome:
        await self.send(codec.Join(tok))
        w = await self.expect(codec.Welcome)
        await self.expect(codec.Keyframe)
        return w

    async def close(self) -> None:
        await self.ws.close()


class LiveNode:
    """A running node: its aiohttp app, URL and a client factory."""

    def __init__(self, app: web.Application, server: TestServer, session: aiohttp.ClientSession):
        self.app = app
        self.server = server
        self.session = session
        self.node = app[NODE_KEY]
        self.outbox = app[OUTBOX_KEY]

    @property
    def url(self) -> str:
        return str(self.server.make_url(""))

    async def connect(self, path: str = "/play/websocket") -> Client:
        ws = await self.session.ws_connect(self.server.make_url(path), autoclose=False,
                                           max_msg_size=0, timeout=aiohttp.ClientWSTimeout(ws_close=2))
        return Client(ws)

    async def player(self, tok: str) -> Client:
        c = await self.connect()
        await c.join(tok)
        return c

    async def get(self, path: str) -> tuple[int, str]:
        async with self.session.get(self.server.make_url(path)) as r:
            return r.status, await r.text()


NodeFactory = Callable[..., Awaitable[LiveNode]]


@pytest.fixture
async def make_node(tmp_path) -> NodeFactory:
    started: list[tuple[TestServer, aiohttp.ClientSession]] = []

    async def factory(**overrides) -> LiveNode:
        values = {**FAST, "node_id": NODE_ID,
                  "outbox_path": str(tmp_path / f"outbox-{len(started)}.sqlite3"), **overrides}
        settings = NodeSettings(**values)
        app = build_app(settings)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        started.append((server, session))
        return LiveNode(app, server, session)

    yield factory
    for server, session in reversed(started):
        await session.close()
        await server.close()


@pytest.fixture
async def node(make_node) -> LiveNode:
    return await make_node()


async def assert_unaffected(c: Client) -> None:
    """A bystander still plays: its state keeps flowing and it still gets answers."""
    before = c.tick
    await c.expect(codec.Delta)
    await c.expect(codec.Delta)
    assert c.tick > before
    await c.send(codec.Ping(1))
    await c.expect(codec.Pong)
    assert not c.ws.closed


def ws_frame(payload: bytes, opcode: int = 0x2) -> bytes:
    """A masked client websocket frame (RFC 6455), for raw-socket clients."""
    import os
    import struct
    n = len(payload)
    if n < 126:
        head = bytes((0x80 | opcode, 0x80 | n))
    elif n < 1 << 16:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
    else:
        head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def raw_websocket(host: str, port: int, path: str = "/play/websocket",
                        rcvbuf: int | None = None
                        ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A websocket opened over a plain socket (so that the test controls its buffers)."""
    import base64
    import os
    import socket
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    sock.setblocking(False)
    await asyncio.get_running_loop().sock_connect(sock, (host, port))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 3)
    assert head.startswith(b"HTTP/1.1 101"), head
    return reader, writer


def parse_server_frames(data: bytes) -> list[tuple[int, bytes]]:
    """(opcode, payload) of each complete unmasked frame in `data`."""
    import struct
    out = []
    i = 0
    while i + 2 <= len(data):
        op, n = data[i] & 0x0F, data[i + 1] & 0x7F
        i += 2
        if n == 126:
            if i + 2 > len(data):
                break
            (n,) = struct.unpack_from("!H", data, i)
            i += 2
        elif n == 127:
            if i + 8 > len(data):
                break
            (n,) = struct.unpack_from("!Q", data, i)
            i += 8
        if i + n > len(data):
            break
        out.append((op, data[i:i + n]))
        i += n
    return out


class FakeLobby:
    """A small lobby: checks each request's signature like the real one, records results.

    `down()` stops listening (connection refused); `up()` listens again on the same port.
    """

    def __init__(self, secret: str = "dev-node-secret", port: int = 0):
        from engine.auth import derive_node_key, verify_request
        self.secret = secret  # the master: each node signs with its derived key
        self.results: dict[str, dict] = {}
        self.replays: dict[str, bytes] = {}   # match id -> replay file (first one wins)
        self.replay_status: int | None = None  # answer replay uploads with this status
        self.posts = 0
        self.heartbeats: list[dict] = []
        self.bad_signatures = 0
        self.status_override: int | None = None
        self.port = port
        self._runner: web.AppRunner | None = None
        nonces: set[str] = set()

        async def verified(request: web.Request, *, raw: bool = False):
            body = await request.read()
            try:
                key = derive_node_key(self.secret, request.headers.get("X-Arena-Node", ""))
                _, nonce = verify_request(key, headers=request.headers,
                                          method=request.method, path=request.path,
                                          body=body, now=time.time())
            except ValueError:
                self.bad_signatures += 1
                return None
            if nonce in nonces:
                self.bad_signatures += 1
                return None
            nonces.add(nonce)
            import json
            return body if raw else json.loads(body)

        async def results(request: web.Request) -> web.Response:
            self.posts += 1
            body = await verified(request)
            if body is None:
                return web.json_response({"error": "bad signature"}, status=403)
            if self.status_override is not None:
                return web.json_response({"error": "override"}, status=self.status_override)
            duplicate = body["match_id"] in self.results
            self.results.setdefault(body["match_id"], body)
            return web.json_response({"ok": True, "duplicate": duplicate})

        async def replay(request: web.Request) -> web.Response:
            body = await verified(request, raw=True)
            if body is None:
                return web.json_response({"error": "bad signature"}, status=403)
            if self.replay_status is not None:
                return web.json_response({"error": "override"}, status=self.replay_status)
            self.replays.setdefault(request.match_info["match_id"], body)
            return web.json_response({"ok": True})

        async def heartbeat(request: web.Request) -> web.Response:
            body = await verified(request)
            if body is None:
                return web.json_response({"error": "bad signature"}, status=403)
            self.heartbeats.append(body)
            return web.json_response({"ok": True})

        self.app = web.Application(client_max_size=16 << 20)  # replay uploads
        self.app.router.add_post("/api/internal/results", results)
        self.app.router.add_post("/api/internal/nodes/heartbeat", heartbeat)
        self.app.router.add_post("/api/internal/replays/{match_id}", replay)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def up(self) -> None:
        self._runner = web.AppRunner(self.app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True)
        await site.start()
        if not self.port:
            self.port = site._server.sockets[0].getsockname()[1]

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


@pytest.fixture
async def lobby():
    fake = FakeLobby()
    await fake.up()
    yield fake
    await fake.down()
