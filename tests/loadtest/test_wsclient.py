"""The bots' lean websocket client (loadtest.wsclient) against a real aiohttp websocket
server: masking (aiohttp's server refuses unmasked client frames), fragmented and large
frames, pings answered, the close handshake both ways, protocol errors refused."""

import asyncio
import os

import pytest
from aiohttp import WSMsgType, web

from loadtest.wsclient import OP_BINARY, OP_CONT, OP_TEXT, WebSocketError, WSClient, frame, mask

pytestmark = pytest.mark.timeout(30)


def test_mask_is_its_own_inverse_and_matches_the_rfc_example():
    # RFC 6455 5.7: "Hello" masked with 37 fa 21 3d
    assert mask(bytes.fromhex("37fa213d"), b"Hello") == bytes.fromhex("7f9f4d5158")
    key = os.urandom(4)
    for n in (0, 1, 3, 4, 5, 125, 126, 65535, 65536, 70001):
        data = os.urandom(n)
        assert mask(key, mask(key, data)) == data


@pytest.mark.parametrize(("n", "head"), [(5, 2), (125, 2), (126, 4), (65535, 4), (65536, 10)])
def test_client_frames_carry_the_mask_bit_and_the_right_length_form(n, head):
    f = frame(OP_BINARY, b"x" * n)
    assert f[0] == 0x82 and f[1] & 0x80
    assert len(f) == head + 4 + n


async def _server(aiohttp_server, handler):
    app = web.Application()
    app.router.add_get("/ws", handler)
    server = await aiohttp_server(app)
    return f"ws://127.0.0.1:{server.port}/ws"


async def test_echo_of_small_large_and_text_messages(aiohttp_server):
    async def echo(request):
        ws = web.WebSocketResponse(max_msg_size=0)
        await ws.prepare(request)
        async for msg in ws:
            if msg.type == WSMsgType.BINARY:
                await ws.send_bytes(msg.data)
            elif msg.type == WSMsgType.TEXT:
                await ws.send_str(msg.data)
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, echo), max_msg_size=1 << 21)
    sent = [b"", b"\x93\x03\x01\x02", os.urandom(125), os.urandom(126), os.urandom(65535),
            os.urandom(65536), os.urandom(1 << 20)]
    for payload in sent:
        client.send_bytes(payload)
    client.send_text("héllo")
    got = [await client.recv() for _ in range(len(sent) + 1)]
    assert got[:-1] == sent and got[-1] == "héllo"
    assert client.bytes_out == client.bytes_in == sum(map(len, sent)) + len("héllo".encode())
    await client.close()
    assert client.close_code == 1000 and client.done
    assert await client.recv() is None


async def test_a_ping_is_answered_with_its_payload(aiohttp_server):
    pongs: list[bytes] = []

    async def pinger(request):
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        await ws.ping(b"are you there")
        msg = await ws.receive()
        if msg.type == WSMsgType.PONG:
            pongs.append(msg.data)
        await ws.send_bytes(b"done")
        await ws.receive()
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, pinger))
    assert await client.recv() == b"done"  # the ping itself is no message
    assert pongs == [b"are you there"]
    await client.close()


async def test_fragmented_messages_are_joined_and_control_frames_may_come_between(aiohttp_server):
    """The server writes raw frames on its transport: fragments of a binary and a text
    message, with a ping inside the first."""
    answered = asyncio.Event()

    async def fragments(request):
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        t = request.transport
        t.write(bytes((OP_BINARY, 3)) + b"abc")              # FIN=0, binary
        t.write(bytes((0x89, 2)) + b"hi")                    # ping in between
        t.write(bytes((OP_CONT, 126)) + (300).to_bytes(2, "big") + b"d" * 300)
        t.write(bytes((0x80 | OP_CONT, 1)) + b"e")           # FIN=1
        t.write(bytes((OP_TEXT, 2)) + "h\xc3".encode("latin-1"))  # "hé" split inside a character
        t.write(bytes((0x80 | OP_CONT, 1)) + b"\xa9")
        msg = await ws.receive()
        if msg.type == WSMsgType.PONG and msg.data == b"hi":
            answered.set()
        await ws.receive()
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, fragments))
    assert await client.recv() == b"abc" + b"d" * 300 + b"e"
    assert await client.recv() == "hé"
    await asyncio.wait_for(answered.wait(), 5)
    await client.close()


@pytest.mark.parametrize("code", [1000, 4020, 4031])
async def test_the_servers_close_code_and_reason_reach_the_bot(aiohttp_server, code):
    async def closer(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await ws.send_bytes(b"last")
        await ws.close(code=code, message=b"bye")
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, closer))
    assert await client.recv() == b"last"  # messages before the close frame still arrive
    assert await client.recv() is None
    assert (client.close_code, client.close_reason) == (code, "bye")
    with pytest.raises(ConnectionError):
        client.send_bytes(b"late")
    await client.close()


async def test_a_bot_close_gets_the_servers_answer(aiohttp_server):
    seen: list[int | None] = []

    async def handler(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for _ in ws:
            pass
        seen.append(ws.close_code)
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, handler))
    await client.close(4000)
    assert client._lost  # the server answered and dropped the TCP connection, no timeout
    assert seen == [4000] and client.close_code == 1000  # aiohttp answers with 1000


@pytest.mark.parametrize(("raw", "code"), [
    (bytes((0x82, 0x81)) + b"\0\0\0\0x", 1002),     # a masked frame from the server
    (bytes((0xC2, 1)) + b"x", 1002),               # a reserved bit
    (bytes((0x83, 1)) + b"x", 1002),               # an unknown data opcode
    (bytes((0x80, 1)) + b"x", 1002),               # a continuation without a start
    (bytes((0x09, 0)), 1002),                      # a fragmented ping
    (bytes((0x81, 2)) + b"\xff\xfe", 1007),        # text that is not UTF-8
    (bytes((0x82, 127)) + (1 << 21).to_bytes(8, "big"), 1009),  # over max_msg_size
])
async def test_protocol_errors_close_with_the_browsers_codes(aiohttp_server, raw, code):
    got: list[int | None] = []

    async def bad(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        request.transport.write(raw)
        msg = await ws.receive()
        got.append(msg.data if msg.type == WSMsgType.CLOSE else None)
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, bad), max_msg_size=1 << 20)
    assert await client.recv() is None
    assert client.close_code == code
    for _ in range(100):
        if got:
            break
        await asyncio.sleep(0.02)
    assert got == [code]


async def test_a_refused_upgrade_is_an_error(aiohttp_server):
    async def plain(request):
        return web.Response(status=403, text="no")

    with pytest.raises(WebSocketError, match="HTTP 403"):
        await WSClient.connect(await _server(aiohttp_server, plain))


async def test_listen_hands_over_every_message_in_order_then_says_done_once(aiohttp_server):
    async def burst(request):
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for i in range(5):
            await ws.send_bytes(bytes([i]))
        await ws.receive()  # the client's "go"
        for i in range(5, 10):
            await ws.send_bytes(bytes([i]))
        await ws.close(code=4000, message=b"bye")
        return ws

    client = await WSClient.connect(await _server(aiohttp_server, burst))
    while len(client._messages) < 5:  # these wait in the recv() queue: listen() hands them over first
        await asyncio.sleep(0.01)
    got: list = []
    done: list = []
    finished = asyncio.get_running_loop().create_future()

    def on_done() -> None:
        done.append(client.close_code)
        if not finished.done():
            finished.set_result(None)

    client.listen(got.append, on_done)
    assert got == [bytes([i]) for i in range(5)] and not done
    client.send_bytes(b"go")
    await asyncio.wait_for(finished, 5)
    assert got == [bytes([i]) for i in range(10)]
    assert done == [4000] and client.close_reason == "bye"
    client.listen(got.append, on_done)  # done already: said at once, and only to a new listener
    assert done == [4000, 4000]
    await client.close()


@pytest.mark.parametrize("n", [0, 1, 4, 5, 125, 126, 300])
def test_a_frame_unmasks_to_its_payload(n):
    payload = os.urandom(n)
    f = frame(OP_BINARY, payload)
    head = 2 if n < 126 else 4
    assert f[1] & 0x7F == (n if n < 126 else 126)
    assert mask(f[head:head + 4], f[head + 4:]) == payload


@pytest.mark.parametrize("n", [0, 1, 4, 5, 125, 126, 300])
def test_send_bytes_writes_one_masked_binary_frame_as_frame_does(n):
    client = WSClient()
    client.transport = _Transport()
    payload = os.urandom(n)
    client.send_bytes(payload)
    (f,) = client.transport.written
    ref = frame(OP_BINARY, payload)
    head = 2 if n < 126 else 4
    assert f[:head] == ref[:head] and len(f) == len(ref)
    assert mask(f[head:head + 4], f[head + 4:]) == payload and client.bytes_out == n
    client.transport.closed = True
    with pytest.raises(ConnectionResetError):
        client.send_bytes(payload)


class _Transport:
    def __init__(self):
        self.written: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.written.append(data)

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True


def _server_frame(payload: bytes, b0: int = 0x82) -> bytes:
    n = len(payload)
    head = bytes((b0, n)) if n < 126 else bytes((b0, 126)) + n.to_bytes(2, "big")
    return head + payload


@pytest.mark.parametrize("n", [2, 100, 125, 126, 253, 65535])
def test_a_listening_client_gets_whole_split_and_joined_frames(n):
    client = WSClient()
    client.connection_made(_Transport())
    got: list = []
    client.listen(got.append)
    one, two = os.urandom(n), os.urandom(n)
    client.data_received(_server_frame(one))                 # the usual read: one whole frame
    joined = _server_frame(one) + _server_frame(two)
    client.data_received(joined)                             # two in one read
    client.data_received(joined[:3])                         # split anywhere
    client.data_received(joined[3:n + 1])
    client.data_received(joined[n + 1:])
    assert got == [one, one, two, one, two] and client.bytes_in == 5 * n
    client.data_received(bytes((0x82, 0x80 | 4)) + b"\0" * 8)  # a masked server frame: refused
    assert client.close_code == 1002 and got == [one, one, two, one, two]
