"""Tick reads (game_server/tick_reads.py): seated raw-websocket players read once per tick
instant. They drive asyncio's own transport read path and honour aiohttp's read-pause
flags: these tests fail loudly when a Python or aiohttp upgrade changes either."""

from __future__ import annotations

import asyncio
import resource
import socket

from engine import codec
from game_server.tick_reads import TickReads, supported
from tests.game_server.conftest import token


class Sink(asyncio.Protocol):
    """A protocol with aiohttp's read-pause flags that records what it is given."""

    def __init__(self) -> None:
        self._reading_paused = False
        self._buffer_paused = False
        self.data = b""
        self.eof = False

    def data_received(self, data: bytes) -> None:
        self.data += data

    def eof_received(self) -> None:
        self.eof = True


async def _pair() -> tuple[asyncio.Transport, Sink, socket.socket]:
    ours, theirs = socket.socketpair()
    tr, proto = await asyncio.get_running_loop().connect_accepted_socket(Sink, ours)
    theirs.setblocking(False)
    return tr, proto, theirs


async def _ready(sock: socket.socket, data: bytes) -> None:
    sock.send(data)
    await asyncio.sleep(0)   # (the kernel delivers a socketpair's bytes at once)


async def test_a_transport_is_read_only_at_read_and_then_back_on_readiness():
    tr, proto, peer = await _pair()
    assert supported(tr)
    reads = TickReads()
    fd = reads.add(tr)
    assert fd >= 0 and len(reads) == 1 and not tr.is_reading()
    await _ready(peer, b"input")
    for _ in range(20):   # the loop turns: nothing read on readiness
        await asyncio.sleep(0)
    assert proto.data == b""
    reads.read()
    assert proto.data == b"input"
    reads.remove(tr, fd)
    assert len(reads) == 0 and tr.is_reading()
    peer.send(b" more")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while proto.data != b"input more" and loop.time() < deadline:
        await asyncio.sleep(0.01)
    assert proto.data == b"input more"   # read on readiness again
    tr.close()
    peer.close()
    reads.close()


async def test_aiohttp_pauses_are_kept():
    tr, proto, peer = await _pair()
    reads = TickReads()
    fd = reads.add(tr)
    proto._buffer_paused = True
    await _ready(peer, b"held")
    reads.read()
    assert proto.data == b""
    proto._buffer_paused = False
    reads.read()
    assert proto.data == b"held"
    # aiohttp's own resume puts the reader back on the loop: the next read takes it back
    tr.resume_reading()
    assert tr.is_reading()
    await _ready(peer, b"!")
    reads.read()
    assert proto.data == b"held!" and not tr.is_reading()
    # leaving while aiohttp holds it paused does not resume it
    proto._reading_paused = True
    reads.remove(tr, fd)
    assert not tr.is_reading()
    tr.close()
    peer.close()
    reads.close()


async def test_eof_closes_and_leaves_the_set():
    tr, proto, peer = await _pair()
    reads = TickReads()
    reads.add(tr)
    peer.close()
    await asyncio.sleep(0)
    reads.read()
    assert proto.eof and tr.is_closing() and len(reads) == 0
    reads.close()


async def test_a_stale_fd_removes_nothing():
    tr, _, peer = await _pair()
    other, _, peer2 = await _pair()
    reads = TickReads()
    fd = reads.add(tr)
    reads.remove(other, fd)   # another transport under tr's number: tr stays
    assert len(reads) == 1 and not tr.is_reading()
    for t, p in ((tr, peer), (other, peer2)):
        t.close()
        p.close()
    reads.close()


async def test_a_seated_websocket_player_is_read_at_ticks(make_node):
    """Through a real node: seated, the player's socket is in the grid's tick reads and off
    the loop's selector; its inputs are acked and its ping answered; after `leave` it is
    back on readiness for the close handshake. With ARENA_TICK_READS=0 it never joins them."""
    live = await make_node()
    c = await live.player(token())
    grid = live.node.tick_grid()
    assert grid.reads is not None and len(grid.reads) == 1
    conn = next(iter(live.node.rooms.values())).clients[0].conn
    assert not conn._transport.is_reading()
    seq = await c.input()
    await _acked(c, seq)
    await c.send(codec.Ping(7))
    assert (await c.expect(codec.Pong)).t == 7
    await c.send(codec.Leave())
    assert await c.closed() == 1000
    assert len(grid.reads) == 0

    off = await make_node(tick_reads=0)
    c2 = await off.player(token("m2"))
    assert off.node.tick_grid().reads is None
    await _acked(c2, await c2.input())
    await c2.close()


async def _acked(c, seq: int) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while c.ack() < seq:
        assert loop.time() < deadline, "input never acked"
        await c.recv()


async def test_one_read_takes_every_ready_socket():
    """More ready sockets than Python's default epoll batch (FD_SETSIZE - 1 = 1023): one
    `read()` still reads them all."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    n = 1100
    if soft < 2 * n + 100:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4 * n), hard))
    reads = TickReads()
    pairs = [await _pair() for _ in range(n)]
    try:
        for tr, _, peer in pairs:
            reads.add(tr)
            peer.send(b"x")
        await asyncio.sleep(0)
        reads.read()
        assert sum(proto.data == b"x" for _, proto, _ in pairs) == n
    finally:
        for tr, _, peer in pairs:
            tr.close()
            peer.close()
        reads.close()
        await asyncio.sleep(0)
