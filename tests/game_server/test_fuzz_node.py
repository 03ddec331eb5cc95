"""Hypothesis throws random bytes and random message sequences at a live node.

The node runs in its own thread and loop for the whole module; each example is one
client connection. After every example the node must still serve, a bystander player in
another room must still be receiving state, every close must carry a documented code, and
no error may have been logged.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import aiohttp
import msgpack
import pytest
from aiohttp import WSMsgType, web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine import codec
from game_server.app import build_app
from game_server.settings import NodeSettings
from lobby.live import free_port
from tests.game_server.conftest import token

DOCUMENTED = {1000, 4001, 4002, 4003, 4004, 4005, 4006, 4010, 4011, 4012, 4013, 4014, 4015,
              4016, 4018, 4020, 4030, 4040}


class ErrorLog(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


class LiveNode:
    """A node and a bystander player on a loop in a background thread."""

    def __init__(self, tmp: str):
        self.port = free_port()
        self.loop = asyncio.new_event_loop()
        self.settings = NodeSettings(node_id="node-1", port=self.port, outbox_path=tmp,
                                     join_timeout=1.0, reconnect_window=0.5,
                                     game_overrides={"time_limit": 3600})
        self.deltas = 0
        self.bystander_closed: int | None = None
        self.errors = ErrorLog()
        logging.getLogger("game_server").addHandler(self.errors)
        logging.getLogger("aiohttp").addHandler(self.errors)
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.run(self._start())

    def run(self, coro, timeout: float = 20):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    async def _start(self) -> None:
        self.runner = web.AppRunner(build_app(self.settings))
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        self.session = aiohttp.ClientSession()
        ws = await self.session.ws_connect(f"http://127.0.0.1:{self.port}/play/websocket")
        await ws.send_bytes(codec.encode(codec.Join(token("bystander", 999, "Calm"))))
        self.bystander = ws
        self.reader = asyncio.get_running_loop().create_task(self._read_bystander())

    async def _read_bystander(self) -> None:
        async for msg in self.bystander:
            if msg.type is WSMsgType.BINARY and isinstance(codec.decode(msg.data, 1 << 22),
                                                           codec.Delta):
                self.deltas += 1
        self.bystander_closed = self.bystander.close_code

    async def attack(self, items: list) -> int | None:
        ws = await self.session.ws_connect(f"http://127.0.0.1:{self.port}/play/websocket",
                                           autoclose=False)
        try:
            for item in items:
                if ws.closed:
                    break
                try:
                    if isinstance(item, str):
                        await ws.send_str(item)
                    else:
                        await ws.send_bytes(item)
                except ConnectionError:
                    break
            deadline = time.monotonic() + 0.1
            while not ws.closed and time.monotonic() < deadline:
                try:
                    msg = await ws.receive(deadline - time.monotonic())
                except TimeoutError:
                    return None  # still open: fine
                if msg.type is WSMsgType.CLOSE:
                    return msg.data  # the node's close code
                if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
                    return ws.close_code
            return ws.close_code
        finally:
            await ws.close()

    async def _stop(self) -> None:
        await self.bystander.close()
        await self.session.close()
        await self.runner.cleanup()

    def stop(self) -> None:
        self.run(self._stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        logging.getLogger("game_server").removeHandler(self.errors)
        logging.getLogger("aiohttp").removeHandler(self.errors)


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    node = LiveNode(str(tmp_path_factory.mktemp("fuzz") / "outbox.sqlite3"))
    yield node
    node.stop()


ints = st.integers(min_value=-(2 ** 63), max_value=2 ** 64 - 1)
small = st.integers(min_value=-200, max_value=5000)
field = st.one_of(ints, st.text(max_size=40), st.binary(max_size=40), st.none(), st.booleans(),
                  st.floats(allow_nan=False), st.lists(small, max_size=3))
structured = st.one_of(
    st.builds(lambda seq, mx, my, aim, b: msgpack.packb([3, seq, mx, my, aim, b]),
              small, small, small, small, small),
    st.builds(lambda seq, values: msgpack.packb([3, seq, *values]),  # any arity, any range
              small, st.lists(ints, max_size=6)),
    st.builds(lambda t: msgpack.packb([4, t]), ints),
    st.builds(lambda t: msgpack.packb([2, t]), st.text(max_size=60)),
    st.builds(lambda t: msgpack.packb([1, t]), st.text(max_size=60)),
    st.just(msgpack.packb([5])),
    st.builds(lambda kind, fs: msgpack.packb([kind, *fs]),
              st.integers(min_value=-5, max_value=300), st.lists(field, max_size=7)),
)
valid_join = st.builds(  # rooms of both games: inputs of either arity meet both
    lambda mode, m, u, bots: codec.encode(codec.Join(token(f"fz-{mode}{m}", u, mode=mode,
                                                           bots=bots))),
    st.sampled_from(["sprint", "tag"]), st.integers(0, 3), st.integers(1, 10 ** 6),
    st.integers(0, 2))
item = st.one_of(
    st.binary(max_size=1500),
    st.text(max_size=400),
    structured,
    structured.map(lambda b: codec.to_text(b)),
    valid_join,
)


@settings(max_examples=100, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.lists(item, max_size=12))
def test_random_traffic_never_hurts_the_node(live, items):
    before = live.deltas
    code = live.run(live.attack(items))
    assert code is None or code in DOCUMENTED
    # the node still seats and serves, and the bystander still plays
    deadline = time.monotonic() + 2
    while live.deltas == before and time.monotonic() < deadline:
        time.sleep(0.01)
    assert live.deltas > before and live.bystander_closed is None
    assert not live.errors.records, [r.getMessage() for r in live.errors.records]
