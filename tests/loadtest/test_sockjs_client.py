"""The bots' SockJS client against the node's own SockJS layer (the protocol-test
endpoints of game_server.conformance): every transport, long streams, close frames."""

import asyncio

import aiohttp
import pytest

from game_server.conformance import build_conformance_app
from loadtest.sockjs_client import TRANSPORTS, SockJSClient

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
async def base(aiohttp_server):
    server = await aiohttp_server(build_conformance_app(disconnect_delay=1.0))
    return f"http://127.0.0.1:{server.port}"


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_echo_on_every_transport(base, transport):
    async with aiohttp.ClientSession() as http:
        client = SockJSClient(http, base + "/echo", transport)
        await client.connect()
        # enough bytes to cross the 4096-byte streaming response limit several times, in
        # small bursts (the echo session's send queue is bounded, like the game's)
        sent = [f"message {i} " + "x" * 200 for i in range(60)]
        got = []
        for i in range(0, len(sent), 5):
            await asyncio.gather(*(client.send(text) for text in sent[i:i + 5]))
            got += [await client.recv() for _ in range(5)]
        assert got == sent
        assert client.send_error is None
        assert client.bytes_in > sum(map(len, sent))
        assert client.bytes_out > sum(map(len, sent))
        await client.close()
        assert await client.recv() is None


@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_close_frame_gives_the_code(base, transport):
    async with aiohttp.ClientSession() as http:
        client = SockJSClient(http, base + "/close", transport)
        await client.connect()
        assert await client.recv() is None
        assert (client.close_code, client.close_reason) == (3000, "Go away!")


async def test_unknown_endpoint_is_a_clear_failure(base):
    async with aiohttp.ClientSession() as http:
        client = SockJSClient(http, base + "/nowhere", "xhr")
        with pytest.raises(Exception) as info:
            await client.connect()
        assert "404" in str(info.value)


def test_unknown_transport_is_refused():
    with pytest.raises(ValueError):
        SockJSClient(None, "http://127.0.0.1:1/echo", "jsonp")
