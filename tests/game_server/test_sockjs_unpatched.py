"""The five faults of the plain `sockjs` 0.13 package, shown on the package itself.

Each test here runs a scenario of test_sockjs_protocol.py / test_sockjs_transport.py
against `sockjs.add_endpoint` without our fixes and asserts the faulty behaviour, so the
fixes in game_server/sockjs_transport.py are proven necessary (and these tests fail the
day a new package version fixes a fault, which is the moment to drop that patch; the
package is pinned in pyproject.toml). docs/sockjs.md maps each fault to its fix.
"""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sockjs
from aiohttp import web
from sockjs import MsgType, SessionState

T = 5.0
DELAY = 0.2
# The package keys its state with plain strings; aiohttp 3.14 warns about that.
pytestmark = pytest.mark.filterwarnings("ignore::aiohttp.web_exceptions.NotAppKeyWarning")


class PackageRecorder:
    def __init__(self) -> None:
        self.events: list[tuple[MsgType, str, object]] = []
        self.sessions: dict[str, sockjs.Session] = {}

    async def handler(self, manager, session, msg) -> None:
        self.events.append((msg.type, session.id, msg.data))
        self.sessions[session.id] = session

    def types(self, sid: str) -> list[MsgType]:
        return [t for t, s, _ in self.events if s.startswith(sid)]


@pytest.fixture
def recorder() -> PackageRecorder:
    return PackageRecorder()


@pytest.fixture
async def client(aiohttp_client, recorder):
    app = web.Application()
    sockjs.add_endpoint(app, recorder.handler, name="raw", prefix="/raw", disconnect_delay=DELAY,
                        cookie_needed=False)
    return await aiohttp_client(app)


async def test_fault1_no_cors(client):
    async with asyncio.timeout(T):
        r = await client.options("/raw/info", headers={"Origin": "http://lobby.example"})
        assert r.status == 405  # a browser's preflight fails
        r = await client.get("/raw/info", headers={"Origin": "http://lobby.example"})
        assert "Access-Control-Allow-Origin" not in r.headers
        r = await client.post(f"/raw/000/{uuid.uuid4()}/xhr", headers={"Origin": "http://x"})
        assert "Access-Control-Allow-Origin" not in r.headers


async def test_fault2_refused_poll_closes_the_held_session(client, recorder):
    sid = str(uuid.uuid4())
    path = f"/raw/000/{sid}/xhr"
    async with asyncio.timeout(T):
        assert await (await client.post(path)).text() == "o\n"
        held = await client.post(path)  # headers at once; waits for data
        assert await (await client.post(path)).text() == 'c[2010,"Another connection still open"]\n'
    # The refusal's cleanup closed the session that `held` still holds.
    assert MsgType.CLOSE in recorder.types(sid)
    assert recorder.sessions[sid].state is SessionState.CLOSING
    held.close()  # the client aborts; its next request gets the forbidden 3000
    await asyncio.sleep(0.05)
    async with asyncio.timeout(T):
        assert await (await client.post(path)).text() == 'c[3000,"Go away!"]\n'


async def test_fault3_abandoned_polling_session_never_expires(client, recorder):
    sid = str(uuid.uuid4())
    async with asyncio.timeout(T):
        assert await (await client.post(f"/raw/000/{sid}/xhr")).text() == "o\n"
    await asyncio.sleep(DELAY * 2)
    manager = sockjs.get_manager("raw", client.app)
    await manager._gc_expired_sessions()  # what its sweep does (every max(delay, 5) s)
    session = manager.sessions[sid]
    assert session.expires is None and not session.expired
    assert session.state is SessionState.OPEN
    assert recorder.types(sid) == [MsgType.OPEN]  # the game never hears of the leave


async def test_fault4_unbounded_queue(client, recorder):
    sid = str(uuid.uuid4())
    async with asyncio.timeout(T):
        await client.post(f"/raw/000/{sid}/xhr")
    session = recorder.sessions[sid]
    assert all(session.send("x") for _ in range(1000))
    assert sum(len(p) for f, p in session._queue if f is sockjs.Frame.MESSAGE) == 1000


async def test_fault5_binary_dropped_and_raw_broadcast_quoted(client, recorder):
    sid = str(uuid.uuid4())
    async with asyncio.timeout(T):
        ws = await client.ws_connect(f"/raw/000/{sid}/websocket")
        assert (await ws.receive()).data == "o"
        await ws.send_bytes(b"\x94\x01\x02")
        await ws.send_str('["after"]')
        while not any(t is MsgType.MESSAGE for t, s, _ in recorder.events if s.startswith(sid)):
            await asyncio.sleep(0.01)
    messages = [d for t, s, d in recorder.events if t is MsgType.MESSAGE]
    assert messages == ["after"]  # the binary frame vanished without a trace
    assert not ws.closed
    await ws.close()
    # The package's raw websocket turns a broadcast into JSON-quoted text.
    before = sum(1 for t, _, _ in recorder.events if t is MsgType.OPEN)
    async with asyncio.timeout(T):
        raw = await client.ws_connect("/raw/websocket")
        while sum(1 for t, _, _ in recorder.events if t is MsgType.OPEN) == before:
            await asyncio.sleep(0.01)
        sockjs.get_manager("raw", client.app).broadcast("aGVsbG8=")
        assert (await raw.receive()).data == '"aGVsbG8="'
    await raw.close()
