"""Issue 11, node hardening: one client address cannot starve the others.

A real node process (`python -m game_server`) with small per-address limits. Attackers
bind their own loopback source address (127.0.0.x, one per test, so that each test
starts with a fresh per-address budget); the playing bystander comes from 127.0.0.1 and
is checked after each abuse. Each test fails on the node before the fix (noted in each).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
import uuid

import aiohttp
import pytest

from engine import codec
from engine.auth import issue_seat_token
from lobby.live import free_port
from tests.game_server.conftest import parse_server_frames, ws_frame

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "hardening-test-seat-secret"
NODE_ID = "node-h"
LIMITS = {
    "ARENA_MAX_CONNECTIONS_PER_ADDRESS": "20",
    "ARENA_MAX_UNJOINED_PER_ADDRESS": "4",
    "ARENA_HTTP_IDLE_TIMEOUT": "1",
    "ARENA_FIRST_MESSAGE_TIMEOUT": "3",
    "ARENA_SOCKJS_MAX_SESSIONS": "40",
    "ARENA_SOCKJS_SESSION_RESERVE": "10",
    "ARENA_SOCKJS_MAX_SESSIONS_PER_ADDRESS": "4",
}


def start_node(tmp, env_extra: dict[str, str] | None = None, preexec_fn=None
               ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "ARENA_ENV": "dev", "SEAT_SECRET": SECRET, **LIMITS, **(env_extra or {})}
    env.pop("NODE_SECRET", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "game_server", "--host", "127.0.0.1", "--port", str(port),
         "--node-id", NODE_ID, "--outbox", str(tmp / f"outbox-{port}.sqlite3"),
         "--sockjs-test-endpoints", "--log-level", "WARNING"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        preexec_fn=preexec_fn)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as r:
                if json.loads(r.read()).get("node_id") == NODE_ID:
                    return proc, url
        except OSError:
            pass
        assert proc.poll() is None and time.monotonic() < deadline, "the node did not start"
        time.sleep(0.1)


def stop_node(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    proc, url = start_node(tmp_path_factory.mktemp("hardening"))
    yield url
    stop_node(proc)


@pytest.fixture(scope="module")
def live_uvloop(tmp_path_factory):
    """The same node on uvloop (ARENA_EVENT_LOOP), whose reads are bounded differently."""
    proc, url = start_node(tmp_path_factory.mktemp("hardening-uv"), {"ARENA_EVENT_LOOP": "uvloop"})
    yield url
    stop_node(proc)


def seat(match: str, user: int = 1) -> str:
    return issue_seat_token(SECRET, user_id=user, name=f"P{user}", match_id=match,
                            node_id=NODE_ID, now=time.time(), ttl=60, mode="arena", bots=1)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


async def metric(url: str, limit: str) -> float:
    async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as r:
        text = await r.text()
    found = re.search(rf'^arena_refused_total{{limit="{limit}"}} (\S+)', text, re.M)
    return float(found.group(1)) if found else 0.0


class Bystander:
    """A seated player from 127.0.0.1 that only watches patches."""

    def __init__(self, http: aiohttp.ClientSession, ws: aiohttp.ClientWebSocketResponse):
        self.http = http
        self.ws = ws

    @classmethod
    async def join(cls, url: str, match: str) -> Bystander:
        http = aiohttp.ClientSession()
        ws = await http.ws_connect(url + "/play/websocket", max_msg_size=0)
        await ws.send_bytes(codec.encode(codec.Join(seat(match))))
        self = cls(http, ws)
        await self.patches(1)
        return self

    async def patches(self, n: int, timeout: float = 5.0) -> None:
        """Wait for `n` more patches (keyframes or deltas)."""
        async with asyncio.timeout(timeout):
            while n > 0:
                msg = await self.ws.receive()
                assert msg.type is aiohttp.WSMsgType.BINARY, msg
                if isinstance(codec.decode_any(msg.data, 1 << 22), codec.Keyframe | codec.Delta):
                    n -= 1

    async def close(self) -> None:
        await self.ws.close()
        await self.http.close()


async def tcp_from(addr: str, url: str) -> socket.socket:
    sock = socket.socket()
    sock.setblocking(False)
    sock.bind((addr, 0))
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port_of(url)))
    return sock


async def ended(sock: socket.socket, timeout: float) -> bool:
    """True if the node ends the connection (EOF or reset) within `timeout`."""
    try:
        async with asyncio.timeout(timeout):
            while True:
                data = await asyncio.get_running_loop().sock_recv(sock, 65536)
                if not data:
                    return True
    except ConnectionError:
        return True
    except TimeoutError:
        return False


async def raw_ws(addr: str, url: str, path: str = "/play/websocket"
                 ) -> tuple[socket.socket, bytes]:
    """A websocket upgrade over a plain socket from `addr`: (socket, the answer's head)."""
    sock = await tcp_from(addr, url)
    loop = asyncio.get_running_loop()
    await loop.sock_sendall(sock, (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n"
        "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    async with asyncio.timeout(5):
        while b"\r\n\r\n" not in head:
            chunk = await loop.sock_recv(sock, 4096)
            assert chunk, head
            head += chunk
    return sock, head


async def read_frames(sock: socket.socket, timeout: float = 5.0) -> list[tuple[int, bytes]]:
    """Server frames until the node's close frame (or EOF)."""
    loop = asyncio.get_running_loop()
    data = b""
    try:
        async with asyncio.timeout(timeout):
            while not any(op == 0x8 for op, _ in parse_server_frames(data)):
                chunk = await loop.sock_recv(sock, 65536)
                if not chunk:
                    break
                data += chunk
    except (ConnectionError, TimeoutError):
        pass
    return parse_server_frames(data)


def close_of(frames: list[tuple[int, bytes]]) -> tuple[int, str] | None:
    for op, payload in frames:
        if op == 0x8:
            return int.from_bytes(payload[:2], "big"), payload[2:].decode()
    return None


# --- item 1: connection exhaustion -------------------------------------------------------


async def test_connections_over_the_per_address_cap_are_refused_players_keep_playing(live):
    """Before: every connection was accepted and held (no per-address cap)."""
    by = await Bystander.join(live, "h-conn")
    before = await metric(live, "connections_per_address")
    socks = [await tcp_from("127.0.0.10", live) for _ in range(60)]
    try:
        results = await asyncio.gather(*(ended(s, 0.5) for s in socks))
        assert sum(results) >= 40  # at most the cap (20) are held
        assert await metric(live, "connections_per_address") - before >= 40
        await by.patches(10)
        newcomer = await Bystander.join(live, "h-conn-new")  # another address gets in
        await newcomer.close()
    finally:
        for s in socks:
            s.close()
        await by.close()


async def test_idle_http_connection_is_closed_after_the_header_timeout(live):
    """Before: aiohttp's 75 s keep-alive timer; a half-sent header was kept for it."""
    sock = await tcp_from("127.0.0.11", live)
    try:
        await asyncio.get_running_loop().sock_sendall(sock, b"GET /health HTTP/1.1\r\nHost: x")
        assert await ended(sock, 5.0)
    finally:
        sock.close()
    assert await metric(live, "http_idle_timeout") >= 1


async def test_unjoined_connections_per_address_are_capped(live):
    """Before: every upgrade was accepted (101)."""
    socks = []
    try:
        for _ in range(4):
            sock, head = await raw_ws("127.0.0.12", live)
            socks.append(sock)
            assert head.startswith(b"HTTP/1.1 101"), head
        sock, head = await raw_ws("127.0.0.12", live)
        socks.append(sock)
        assert head.startswith(b"HTTP/1.1 429"), head
        by = await Bystander.join(live, "h-unjoined")  # from another address: in
        await by.close()
    finally:
        for s in socks:
            s.close()


async def test_silent_game_connection_is_closed_at_the_first_message_timeout(live):
    """Before: only join_timeout (10 s) closed it."""
    sock, head = await raw_ws("127.0.0.14", live)
    try:
        assert head.startswith(b"HTTP/1.1 101")
        t0 = time.monotonic()
        frames = await read_frames(sock, 8.0)
        assert close_of(frames) == (4005, "Join timeout")
        assert time.monotonic() - t0 < 8.0
    finally:
        sock.close()


# --- item 2: control frames --------------------------------------------------------------


@pytest.mark.parametrize("node", ["live", "live_uvloop"])
@pytest.mark.parametrize(("path", "seated"), [("/play/websocket", False),
                                              ("/play/000/{sid}/websocket", False),
                                              ("/play/websocket", True)])
async def test_ping_flood_is_closed_4004_and_no_longer_read(request, node, path, seated):
    """Before: aiohttp answered every PING (autoping), outside every budget. The flood
    (20,000 pings, 120 KB: many of the node's bounded reads, `READ_CHUNK`) is sent while
    the node reads it; once closed the node reads no more of it, so the send may never
    finish: it is cancelled at the end. `seated`: the flood comes after a `join` (the
    seated path, where no unjoined budget applies)."""
    live = request.getfixturevalue(node)
    match = f"h-ping-{len(path)}-{seated}"
    by = await Bystander.join(live, match)
    addr = "127.0.0.23" if "sid" in path else "127.0.0.14" if seated else "127.0.0.13"
    sock, head = await raw_ws(addr, live, path.format(sid=uuid.uuid4().hex))
    flood = None
    try:
        assert head.startswith(b"HTTP/1.1 101")
        loop = asyncio.get_running_loop()
        if seated:
            await loop.sock_sendall(sock, ws_frame(codec.encode(codec.Join(seat(match, 2)))))
            data = b""
            async with asyncio.timeout(10):   # its welcome and first keyframe
                while not any(op == 0x2 and type(codec.decode(p, 1 << 22)) is codec.Keyframe
                              for op, p in parse_server_frames(data)):
                    data += await loop.sock_recv(sock, 65536)
        flood = asyncio.ensure_future(loop.sock_sendall(sock, ws_frame(b"", 0x9) * 20_000))
        frames = await read_frames(sock)
        pongs = sum(1 for op, _ in frames if op == 0xA)
        assert pongs < 100
        if "sid" in path:  # SockJS: c[4004,"Input flood"] in a text frame
            assert any(op == 0x1 and payload.startswith(b"c[4004") for op, payload in frames)
        else:
            errors = [codec.decode(p) for op, p in frames if op == 0x2]
            assert codec.Error(4004, "Input flood") in errors
            assert close_of(frames) == (4004, "Input flood")
        await by.patches(5)
    finally:
        if flood is not None:
            flood.cancel()
            await asyncio.gather(flood, return_exceptions=True)
        sock.close()
        await by.close()
    assert await metric(live, "control_rate") >= 1


async def test_reconnecting_does_not_refill_the_unjoined_budget(live):
    """Each unjoined frame costs the address's budget (40/s, 160 held): a flood spread
    over fresh connections runs it dry, and the address's next upgrade is refused."""
    loop = asyncio.get_running_loop()
    refused = False
    for _ in range(60):
        sock, head = await raw_ws("127.0.0.16", live)
        try:
            if head.startswith(b"HTTP/1.1 429"):
                refused = True
                break
            await loop.sock_sendall(sock, ws_frame(b"", 0x9) * 15)  # under the per-connection 20
            data = b""
            async with asyncio.timeout(5):  # every ping answered (or the connection closed)
                while sum(op == 0xA for op, _ in parse_server_frames(data)) < 15 \
                        and close_of(parse_server_frames(data)) is None:
                    chunk = await loop.sock_recv(sock, 65536)
                    if not chunk:
                        break
                    data += chunk
        finally:
            sock.close()
    assert refused
    assert await metric(live, "unjoined_rate") >= 1


# --- items 3, 4, 6: SockJS ---------------------------------------------------------------


async def _post(http: aiohttp.ClientSession, url: str, data: bytes | str | None = None,
                headers: dict | None = None) -> tuple[int, str]:
    async with http.post(url, data=data, headers=headers) as r:
        return r.status, await r.text()


async def _partial_post(live: str, path: str, length: int, addr: str) -> bytes:
    """POST announcing `length` body bytes but sending only 10: the node's answer (a node
    that reads the body first never answers)."""
    sock = await tcp_from(addr, live)
    loop = asyncio.get_running_loop()
    try:
        await loop.sock_sendall(sock, (
            f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {length}\r\n"
            "Content-Type: text/plain\r\n\r\n").encode() + b'["' + b"A" * 8)
        async with asyncio.timeout(3):
            answer = await loop.sock_recv(sock, 4096)
        return answer
    finally:
        sock.close()


async def test_xhr_send_refused_before_its_body_is_read(live):
    """Before: the body (up to 1 MiB) was read and parsed first, for a closed session too."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.17", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        base = f"/play/000/{uuid.uuid4().hex}"
        assert await _post(http, live + base + "/xhr") == (200, "o\n")
        # a body above the cap (16 messages of max_message_bytes): 413, unread
        answer = await _partial_post(live, base + "/xhr_send", 100_000, "127.0.0.17")
        assert answer.startswith(b"HTTP/1.1 413"), answer
        # the session closed by the node (bad message: 4001), then a 1 MiB send: 404, unread
        assert (await _post(http, live + base + "/xhr_send", '["!!"]'))[0] == 204
        bodies = [(await _post(http, live + base + "/xhr"))[1] for _ in range(2)]
        assert bodies[-1].startswith('c[4001,"Bad message"]'), bodies
        answer = await _partial_post(live, base + "/xhr_send", 1 << 20, "127.0.0.17")
        assert answer.startswith(b"HTTP/1.1 404"), answer
    assert await metric(live, "sockjs_send_body") >= 1
    assert await metric(live, "sockjs_send_no_session") >= 1


async def test_sockjs_sessions_capped_per_address_with_a_reserve(tmp_path):
    """Before: one address could open sessions up to the node-wide cap (10,000)."""
    proc, live = start_node(tmp_path)  # its own node: every session here is counted
    sessions: list[aiohttp.ClientSession] = []

    async def open_from(addr: str) -> int:
        http = aiohttp.ClientSession(connector=aiohttp.TCPConnector(local_addr=(addr, 0)))
        sessions.append(http)
        status, body = await _post(http, f"{live}/play/000/{uuid.uuid4().hex}/xhr")
        assert status != 200 or body == "o\n"
        return status

    try:
        assert [await open_from("127.0.0.30") for _ in range(5)] == [200] * 4 + [429]
        # more addresses, 4 sessions each, until the reserve (the last 10 of 40) is reached:
        # then an address holding an unjoined session gets no more
        opened, addr = 4, 31
        while (status := await open_from(f"127.0.0.{addr}")) == 200:
            opened += 1
            if opened % 4 == 0:
                addr += 1
        assert status == 503 and opened == 40 - 10
        # an address holding no unjoined session still gets one, from the reserve...
        assert await open_from("127.0.0.60") == 200
        assert await open_from("127.0.0.1") == 200
        # ...but not a second while its first has not joined
        assert await open_from("127.0.0.60") == 503
        assert await metric(live, "sockjs_sessions_per_address") >= 1
        assert await metric(live, "sockjs_session_reserve") >= 2
    finally:
        for http in sessions:
            await http.close()
        stop_node(proc)


async def test_sockjs_session_that_never_joins_is_closed_at_the_first_message_timeout(live):
    """Before: a silent session lived until join_timeout (10 s) closed it."""
    connector = aiohttp.TCPConnector(local_addr=("127.0.0.19", 0))
    async with aiohttp.ClientSession(connector=connector) as http:
        base = f"{live}/play/000/{uuid.uuid4().hex}"
        t0 = time.monotonic()
        assert await _post(http, base + "/xhr") == (200, "o\n")
        frames: list[str] = []
        async with asyncio.timeout(9):  # 3 s here; join_timeout is 10 s
            while not frames or not frames[-1].startswith("c"):
                frames.append((await _post(http, base + "/xhr"))[1].strip())
        assert frames[-1] == 'c[4005,"Join timeout"]'
        assert time.monotonic() - t0 >= 3.0


async def test_play_refuses_short_session_ids_conformance_endpoints_do_not(live):
    """Before: any non-empty id was a session, on /play too."""
    async with aiohttp.ClientSession() as http:
        status, text = await _post(http, live + "/play/000/abc/xhr")
        assert status == 400 and "22" in text
        assert await _post(http, live + "/echo/000/abc/xhr") == (200, "o\n")


# --- conformance: Origin null, the raw websocket, 1009 -----------------------------------


@pytest.mark.parametrize("path", ["/echo/info", "/echo/000/{sid}/xhr", "/echo/000/{sid}/xhr_streaming"])
async def test_origin_null_is_echoed(live, path):
    """Before: `Access-Control-Allow-Origin: *` for `Origin: null`."""
    async with aiohttp.ClientSession() as http:
        url = live + path.format(sid=uuid.uuid4().hex)
        async with http.options(url, headers={"Origin": "null"}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == "null"
        method = http.get if path.endswith("info") else http.post
        async with method(url, headers={"Origin": "null"}) as r:
            assert r.status == 200
            assert r.headers["Access-Control-Allow-Origin"] == "null"


async def test_raw_websocket_on_the_conformance_endpoints(live):
    """Before: 404 for /echo/websocket and /close/websocket."""
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(live + "/echo/websocket") as ws:
            await ws.send_str("Hello world!\uffff")
            assert (await ws.receive(3)).data == "Hello world!\uffff"
        async with http.ws_connect(live + "/close/websocket") as ws:
            msg = await ws.receive(3)
            assert msg.type is aiohttp.WSMsgType.CLOSE and msg.data == 3000
        async with http.get(live + "/disabled_websocket_echo/websocket") as r:
            assert r.status == 404


@pytest.mark.parametrize("path", ["/play/websocket", "/play/000/{sid}/websocket"])
async def test_1009_carries_its_reason(live, path):
    """Before: aiohttp's 1009 close had an empty reason."""
    sock, head = await raw_ws("127.0.0.18", live, path.format(sid=uuid.uuid4().hex))
    try:
        assert head.startswith(b"HTTP/1.1 101")
        await asyncio.get_running_loop().sock_sendall(sock, ws_frame(b"x" * 70_000, 0x2))
        assert close_of(await read_frames(sock)) == (1009, "Message too big")
    finally:
        sock.close()
