"""Clients that stop reading, and how the node ends a connection (docs/game_server.md,
"Slow clients" and "Closing"): a stalled client is found with the default settings and
closed 4020 (never 4004 for honest inputs the network held back), and a close frame is
followed by the client's reply, not by a reset, even while the client's inputs still flow.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import time

import pytest

from engine import codec
from tests.game_server.conftest import (
    assert_unaffected,
    parse_server_frames,
    raw_websocket,
    token,
    ws_frame,
)

#: Rooms that write a lot: 15 bots, 30 patches per (scaled) second, 3x time.
BUSY = {"time_scale": 3.0, "game_overrides": {"patch_hz": 30, "time_limit": 120,
                                                "score_limit": 1000}}


def _message(msg: codec.Message, sockjs: bool) -> bytes:
    """One client websocket frame: binary msgpack, or a SockJS text frame `["<base64>"]`."""
    if sockjs:
        return ws_frame(json.dumps([codec.to_text(codec.encode(msg))]).encode(), opcode=0x1)
    return ws_frame(codec.encode(msg))


async def _send_inputs(writer: asyncio.StreamWriter, hz: float, stop: asyncio.Event,
                       sockjs: bool = False) -> None:
    """An honest client: one input every 1/hz s, whatever happens to its reading side."""
    seq = 0
    while not stop.is_set():
        seq += 1
        try:
            writer.write(_message(codec.Input(seq, (1, 0, 0, 0)), sockjs))
        except (ConnectionError, RuntimeError):
            return
        await asyncio.sleep(1 / hz)


async def _read_to_end(reader: asyncio.StreamReader, timeout: float) -> tuple[bytes, str]:
    """Everything the node still sends; how the stream ended ("eof", "reset", "timeout")."""
    data = bytearray()
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(data), "timeout"
        try:
            chunk = await asyncio.wait_for(reader.read(65536), left)
        except TimeoutError:
            return bytes(data), "timeout"
        except ConnectionResetError:
            return bytes(data), "reset"
        if not chunk:
            return bytes(data), "eof"
        data += chunk


def _close_code(frames: list[tuple[int, bytes]]) -> int | None:
    for op, payload in frames:
        if op == 0x8:
            return struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
    return None


async def _stalled_client(n, match: str, *, send_hz: float = 0):
    """A raw websocket client that joins a busy room and never reads again."""
    reader, writer = await raw_websocket(n.server.host, n.server.port, rcvbuf=4096)
    writer.write(_message(codec.Join(token(match, 1, bots=15)), False))
    await writer.drain()
    stop = asyncio.Event()
    task = asyncio.create_task(_send_inputs(writer, send_hz, stop)) if send_hz else None
    return reader, writer, stop, task


async def _wait_for_close(metrics, code: int, seconds: float, calm) -> float:
    t0 = time.monotonic()
    while not metrics.closed_by_code[code] and time.monotonic() - t0 < seconds:
        await calm.expect(codec.Delta)  # the bystander keeps its state flowing meanwhile
    return time.monotonic() - t0


@pytest.mark.slow
async def test_stalled_client_is_closed_4020_with_default_buffers(make_node):
    """With the default `socket_send_buffer` the kernel no longer hides the backlog: the
    node refuses frames (latest state wins), then closes 4020 within seconds."""
    n = await make_node(**BUSY)
    calm = await n.player(token("calm", 99))
    reader, writer, _, _ = await _stalled_client(n, "stall")
    metrics = n.node.metrics
    waited = await _wait_for_close(metrics, 4020, 12.0, calm)
    assert metrics.closed_by_code[4020] == 1, f"not dropped after {waited:.1f} s"
    assert metrics.queue_drops >= n.node.settings.max_send_queue
    assert not metrics.closed_by_code[4004]
    # The node lets go of it: no connection left behind for a client that never reads.
    deadline = time.monotonic() + 5
    while len(n.node.connections) > 1 and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    assert len(n.node.connections) == 1  # the bystander's
    await assert_unaffected(calm)
    writer.close()


@pytest.mark.slow
async def test_stalled_client_sending_honest_inputs_gets_4020_not_4004(make_node):
    """A client that stops reading but keeps sending 20 inputs/s is a slow consumer, not a
    flood, even if the network hands its inputs over in bursts."""
    n = await make_node(max_input_rate=20, **BUSY)
    calm = await n.player(token("calm", 99))
    reader, writer, stop, task = await _stalled_client(n, "stall", send_hz=20)
    metrics = n.node.metrics
    await _wait_for_close(metrics, 4020, 12.0, calm)
    stop.set()
    await task
    assert (metrics.closed_by_code[4020], metrics.closed_by_code[4004]) == (1, 0)
    writer.close()


@pytest.mark.parametrize("sockjs", [False, True], ids=["websocket", "sockjs-websocket"])
async def test_close_frame_reaches_a_client_whose_inputs_keep_coming(make_node, sockjs):
    """The match ends while the client lags a little and keeps sending inputs: it still
    reads every frame, the match end and the close code (no reset from a node that
    closed its socket with the client's inputs unread)."""
    n = await make_node(time_scale=3.0, game_overrides={"patch_hz": 30, "time_limit": 4})
    path = "/play/000/lagging-" + "x" * 20 + "/websocket" if sockjs else "/play/websocket"
    reader, writer = await raw_websocket(n.server.host, n.server.port, path, rcvbuf=4096)
    writer.write(_message(codec.Join(token("end", 1, bots=15)), sockjs))
    stop = asyncio.Event()
    task = asyncio.create_task(_send_inputs(writer, 20, stop, sockjs))
    metrics = n.node.metrics
    deadline = time.monotonic() + 10
    while not metrics.matches_finished and time.monotonic() < deadline:  # not reading
        await asyncio.sleep(0.05)
    assert metrics.matches_finished == 1
    await asyncio.sleep(0.3)  # the client reads again a little later; inputs went on
    data, end = await _read_to_end(reader, 5)
    stop.set()
    await task
    frames = parse_server_frames(data)
    if sockjs:  # c[1000,"Normal closure"], then the websocket's own close frame
        texts = [p.decode() for op, p in frames if op == 0x1]
        assert texts and texts[-1] == 'c[1000,"Normal closure"]', (end, texts[-3:])
        last = codec.decode_text(json.loads(texts[-2][1:])[0], max_size=1 << 22)
        assert _close_code(frames) is not None, (end, len(frames))
    else:
        assert _close_code(frames) == 1000, (end, len(frames))
        last = codec.decode([p for op, p in frames if op == 0x2][-1], max_size=1 << 22)
    assert isinstance(last, codec.Event) and last.events[0][0] == codec.EV_MATCH_END
    writer.close()


async def test_inputs_the_network_held_back_are_not_a_flood(make_node):
    """3 s of honest 20/s inputs arriving at once after 3 s of quiet (a network or a
    client loop that held them) pass: the rate is judged over `input_window`."""
    n = await make_node(max_input_rate=20)
    c = await n.player(token("held", 1))
    t0 = time.monotonic()
    while time.monotonic() - t0 < 3.0:  # quiet, reading its state
        await c.expect(codec.Delta)
    for _ in range(60):
        await c.input(mx=100)
    await assert_unaffected(c)
    assert n.node.metrics.closed_by_code[4004] == 0
    assert n.node.metrics.inputs == 60


async def test_sustained_input_flood_is_still_4004(make_node):
    """3x the rate, steadily: the credit runs out within seconds, then 4004."""
    n = await make_node(max_input_rate=20)
    calm = await n.player(token("calm", 99))
    c = await n.player(token("flood", 1))
    t0 = time.monotonic()
    while not n.node.metrics.closed_by_code[4004] and time.monotonic() - t0 < 5:
        await c.input(mx=100)
        await asyncio.sleep(1 / 60)
    assert time.monotonic() - t0 < 5
    code = await c.closed()
    assert code == 4004 and c.error == codec.Error(4004, "Input flood")
    await assert_unaffected(calm)


@pytest.mark.slow
async def test_client_that_shrinks_its_window_and_stalls_is_not_a_flood(make_node):
    """What the load test's slow bots do (aiohttp client): shrink SO_RCVBUF mid-connection,
    stop reading the socket, keep sending 20 inputs/s. After a few seconds the node stops
    receiving those inputs (they wait unacknowledged in the client's send queue: the
    node's segments carrying the ACKs are beyond the client's shrunk window), and they
    all arrive at once when the client reads again. That burst of honest inputs was
    closed 4004 (a bucket of 2 s); the connection must simply go on."""
    n = await make_node(max_input_rate=20, game_overrides={"time_limit": 60})
    c = await n.connect()
    await c.send(codec.Join(token("shrunk", 1, bots=3)))
    await c.expect(codec.Keyframe)
    tr = c.ws._response.connection.transport
    tr.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    tr.pause_reading()
    metrics = n.node.metrics
    for _ in range(10 * 20):  # 10 s without reading, inputs going on
        await c.input(mx=100)
        await asyncio.sleep(0.05)
    received_while_stalled = metrics.inputs
    tr.resume_reading()
    before = c.tick
    t0 = time.monotonic()
    while time.monotonic() - t0 < 2.0:  # reading again: the backlog, then live state
        await c.recv()
    assert metrics.closed_by_code[4004] == 0, (received_while_stalled, metrics.inputs)
    assert c.tick > before and not c.ws.closed and metrics.inputs >= 10 * 20
    await c.close()
