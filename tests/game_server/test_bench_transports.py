"""game_server.bench's SockJS clients: they count the node's state frames (and nothing
else) in SockJS text, answer the heartbeat ping, and a tiny run of each transport reports
every frame delivered and the inputs received. Behaviour only: no speed is checked."""

from __future__ import annotations

import asyncio
import base64

import pytest

from engine import codec
from game_server import bench


def _b64(msg: codec.Message) -> bytes:
    return base64.b64encode(codec.encode(msg))


KEYFRAME = codec.Keyframe(7, 100, {1: (1, 10, 20, 0, 100, 0, 0, 0, 1, 0, "a")}, [])
DELTA = codec.Delta(8, 7, 99, {}, [], {1: [1, 11]}, [[16, 1, 2, 3]])
OTHERS = [codec.Welcome(1, "m", "r", 7, {"game": "arena"}), codec.Event(9, [[3, "time", []]]),
          codec.Error(4001, "Bad message"), codec.Pong(5, 9),
          codec.Moved("http://127.0.0.1:1", "t")]


def test_state_tokens_count_keyframes_and_deltas_only() -> None:
    text = b'a["' + b'","'.join([_b64(KEYFRAME), *(_b64(m) for m in OTHERS), _b64(DELTA)]) + b'"]'
    assert bench.sockjs_state_frames(text) == 2
    assert bench.sockjs_state_frames(b'a["' + _b64(OTHERS[0]) + b'"]') == 0
    assert bench.sockjs_state_frames(b"o") == bench.sockjs_state_frames(b"h") == 0


class _Transport:
    def __init__(self) -> None:
        self.written: list[bytes] = []

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return False


def _server_frame(opcode: int, payload: bytes) -> bytes:
    n = len(payload)
    head = bytes((0x80 | opcode, n)) if n < 126 else bytes((0x80 | opcode, 126)) + n.to_bytes(2, "big")
    return head + payload


def test_sockjs_websocket_client_parses_frames_split_anywhere() -> None:
    loop = asyncio.new_event_loop()
    try:
        stream = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n"
                  + _server_frame(1, b"o")
                  + _server_frame(1, b'a["' + _b64(OTHERS[0]) + b'"]')
                  + _server_frame(9, b"hb")
                  + _server_frame(1, b'a["' + _b64(KEYFRAME) + b'"]')
                  + _server_frame(1, b'a["' + b'","'.join([_b64(DELTA)] * 90) + b'"]')  # > 125 B
                  + _server_frame(1, b"h"))
        for cut in (1, 7, 60, 61, 200, len(stream) - 1):
            ready = loop.create_future()
            c = bench._SockJSWSClient(True, ready)
            tr = _Transport()
            c.connection_made(tr)  # type: ignore[arg-type]
            c.data_received(stream[:cut])
            c.data_received(stream[cut:])
            assert c.frames == 91, cut
            assert c.buf == b""
            # the ping is answered with a masked pong carrying its payload
            assert tr.written == [b"\x8a\x82\0\0\0\0hb"]
            assert ready.result() is True
    finally:
        loop.close()


def test_input_frames() -> None:
    payload = codec.encode(codec.Input(3, (0, 0, 0, 0)))
    frame = bench._SockJSWSClient.input_frame(payload)
    assert frame[0] == 0x81 and frame[1] & 0x80  # text, masked (zero key)
    assert frame[6:] == b'["' + base64.b64encode(payload) + b'"]'
    b64, rest = bench._XhrClient.input_frame(payload)
    body = b'["' + b64 + b'"]'
    assert rest == str(len(body)).encode() + b"\r\n\r\n" + body


@pytest.mark.slow  # two processes per run: about 12 s each
@pytest.mark.parametrize("transport", bench.TRANSPORTS)
def test_tiny_run_delivers_every_frame(transport: str) -> None:
    r = bench.run_one("node", 4, 1.0, 0.5, 0, input_hz=20, transport=transport)
    assert r["transport"] == transport
    assert r["frames_received_total"] > 0
    assert r["delivered_fraction"] == 1.0
    assert r["inputs_received"] > 0
    assert r["client_lost"] == 0 and r["client_errors"] == 0
    assert bench.verdict(r) in ("pass", "fail")  # not client-limited
    assert r["client_cpu_share"] >= 0.0


@pytest.mark.slow
def test_the_floor_counts_every_input_and_delivers_every_frame() -> None:
    """The bare protocol of the input mode's floor: each client frame counted once."""
    r = bench.run_one("bare", 4, 1.0, 0.5, 40, input_hz=20)
    assert r["delivered_fraction"] == 1.0 and r["frames_received_total"] > 0
    # the clients' inputs of the window, each counted once by the server: the two
    # processes' windows are not aligned (by a few slots on a loaded machine), a frame
    # counted twice or never would show as 2x or 0x
    assert 0.75 <= r["inputs_received"] / r["inputs_sent_in_window"] <= 1.25


# --- the SockJS websocket's direct read (game_server/sockjs_transport.py, `_DirectQueue`),
# which the sockjs-websocket bench measures: here because this file is the bench's.

class _Recorder:
    def __init__(self) -> None:
        self.messages: list[tuple[str | bytes, bool]] = []
        self.got = asyncio.Event()
        self.expect = 0

    def connection_made(self, conn) -> None:  # type: ignore[no-untyped-def]
        pass

    def message_received(self, conn, data) -> None:  # type: ignore[no-untyped-def]
        self.messages.append((data, asyncio.current_task() is not None))
        if len(self.messages) >= self.expect:
            self.got.set()

    def connection_lost(self, conn) -> None:  # type: ignore[no-untyped-def]
        pass


async def test_sockjs_websocket_base64_messages_skip_the_task_and_keep_their_order() -> None:
    from aiohttp import ClientSession, web
    from aiohttp.test_utils import TestServer

    from game_server import sockjs_transport, websocket

    assert websocket.DIRECT_READ
    rec = _Recorder()
    app = web.Application()
    sockjs_transport.add_sockjs_routes(app, rec, prefix="/play")
    async with TestServer(app) as server, ClientSession() as http:
        ws = await http.ws_connect(server.make_url("/play/0/abcdefghijklmnopqrstuvwx/websocket"))
        assert (await ws.receive()).data == "o"
        rec.expect = 5
        await ws.send_str('["QUJD"]')         # one base64 message: direct
        await ws.send_str('["a b"]')          # not base64: the read loop, decoded as JSON
        await ws.send_str('["REVG","R0hJ"]')  # a batch: the read loop
        await ws.send_str('["SktM"]')
        await asyncio.wait_for(rec.got.wait(), 5)
        await ws.close()
    assert [m for m, _ in rec.messages] == ["QUJD", "a b", "REVG", "R0hJ", "SktM"]
    assert rec.messages[0][1] is False  # from data_received, no task
    assert rec.messages[1][1] is True and rec.messages[2][1] is True
