"""`python -m game_server.bench`: what a node costs per delivered state frame.

For each N (default 1000 and 2000) it runs, one after the other:

- **node**: a real game node (`build_app`, rooms of 16 passive players of `--mode`
  (default the registry's first; fewer if the mode's game seats fewer), 20 patches/s, raw binary
  websocket), and
- **baseline**: a plain aiohttp server that `await ws.send_bytes(frame)` to every client
  in a loop, 20 times a second, with a frame of the node's mean state-frame size.

Each server runs in its own process (pinned to CPU 0 when there are two); N websocket
clients run in a second process (pinned to CPU 1): lean raw-socket asyncio protocols that
count the state frames they receive. The server's CPU time (`time.process_time`) over a
measured window is divided by the frames delivered in that window. Printed and written to
`reports/node-bench.json`: CPU µs per delivered frame for both and their ratio, delivered
fraction, tick p50/p99 and overruns. `BENCH_PROFILE=/tmp/x` dumps a cProfile of each server's
measured window to `/tmp/x.node` and `/tmp/x.baseline`; both servers run the node's default
event loop (`NodeSettings.event_loop`), or `BENCH_LOOP=asyncio|uvloop`.

`--input-hz 20` adds the **input mode**: each N is run four times, node and baseline each
passive and playing, where every client also sends one input message 20 times a second as
a real player does (`[3, seq, *values]`, masked, idle values: no movement, no fire, so
that the simulation's own cost does not change). The baseline then also reads every
message (`async for msg in ws`, aiohttp's plain read loop). Per input message:
(CPU of the playing run - its frames x the passive run's µs per frame) / inputs received,
for the node and the baseline; the report's `inputs` section holds both. Input mode also
runs the **floor** (`bare`), passive and playing: aiohttp's upgrade, then a bare
`asyncio.Protocol` on the socket that only counts the client's frames and writes the
baseline's frames pre-built: one read per input and one write per frame, nothing else.

`--transport sockjs-websocket|xhr-streaming` (default `websocket`) gives the node SockJS
clients instead (`/play/<server>/<session>/...`, base64 msgpack messages): a SockJS
websocket (text frames, the heartbeat ping answered), or xhr-streaming (one streaming POST,
reopened when the node ends it, and one keep-alive connection for `xhr_send` POSTs, one at
a time as sockjs-client does, what comes meanwhile batched into the next). The baseline
stays the plain aiohttp binary websocket with raw clients.

The clients run on uvloop (`BENCH_CLIENT_LOOP=asyncio` for asyncio's loop); their own CPU
share over the window is in the table (`clients`) and the JSON (`client_cpu_share`): near
1.00 the clients, not the node, were the limit. `overruns` are skipped room ticks; the
JSON's `overrun_share` is their share of the ticks due.

`--find-capacity` (with `--input-hz`, default 20): bisects for the largest N (a multiple
of `--cap-step`, 250, up to `--cap-max`, 5000) of playing players of `--transport` at which
the node delivers >= 99.9% of its frames with <= 1% of its ticks skipped; a run in which
the clients did not send their inputs or lost a connection counts as failed and is
reported as client-limited. The figure goes in the report's `capacity`.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import multiprocessing as mp
import os
import resource
import statistics
import struct
import sys
import time
from multiprocessing.connection import Connection as Pipe

ROOM_SIZE = 16      # players per room, at most the mode's max_players
PATCH_HZ = 20
#: each mode's config fields the benchmark sets (only those the config has)
OVERRIDES = {"sim_hz": PATCH_HZ, "patch_hz": PATCH_HZ, "time_limit": 3600, "score_limit": 10 ** 6}


def first_mode() -> str:
    """The default mode: the registry's first."""
    from engine.registry import registry
    return next(iter(registry().modes))


def room_size(mode_name: str) -> int:
    """ROOM_SIZE, or fewer if the mode's game seats fewer."""
    from engine.registry import registry
    _, mode = registry().mode(mode_name)
    return min(ROOM_SIZE, mode.config.max_players)


# --- helpers --------------------------------------------------------------------------------

def _pin(cpu: int) -> None:
    try:
        if len(os.sched_getaffinity(0)) >= 2:
            os.sched_setaffinity(0, {cpu})
    except (AttributeError, OSError):
        pass


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# --- servers (one process each) -----------------------------------------------------------------

def _frame_at(buf: bytes, i: int, n: int) -> tuple[int, int]:
    """The websocket frame at `buf[i:n]`: (header bytes incl. any mask key, payload length),
    or (0, 0) while it is incomplete."""
    if i + 2 > n:
        return 0, 0
    length, head = buf[i + 1] & 0x7F, 2
    if length == 126:
        if i + 4 > n:
            return 0, 0
        length, head = (buf[i + 2] << 8) | buf[i + 3], 4
    elif length == 127:
        if i + 10 > n:
            return 0, 0
        length, head = int.from_bytes(buf[i + 2:i + 10], "big"), 10
    if buf[i + 1] & 0x80:
        head += 4
    return (head, length) if i + head + length <= n else (0, 0)


class _Bare(asyncio.Protocol):
    """The floor (kind `bare`): what one read per input and one write per frame cost on this
    loop with nothing else: the client's frames are only counted (header parsed, payload
    skipped), the frames written are pre-built."""

    def __init__(self, stats: dict, gone: asyncio.Future):
        self.stats = stats
        self.gone = gone
        self.buf = b""

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        i, n, count = 0, len(buf), 0
        while True:
            head, length = _frame_at(buf, i, n)
            if not head:
                break
            count += 1
            i += head + length
        self.stats["inputs"] += count
        self.buf = buf[i:]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.gone.done():
            self.gone.set_result(None)


def _serve(kind: str, pipe: Pipe, frame_size: int) -> None:
    _pin(0)
    _raise_nofile()
    if server_loop() == "uvloop":  # both servers on the same loop
        import uvloop
        uvloop.run(_serve_async(kind, pipe, frame_size))
    else:
        asyncio.run(_serve_async(kind, pipe, frame_size))


def server_loop() -> str:
    """The servers' event loop: BENCH_LOOP, else the node's default (NodeSettings.event_loop)."""
    from game_server.settings import NodeSettings
    return os.environ.get("BENCH_LOOP") or NodeSettings.event_loop


def input_values(mode_name: str) -> tuple[int, ...]:
    """Idle input values of `mode_name`'s game: each field's value nearest 0 in its range."""
    from engine.registry import registry
    gdef, _ = registry().mode(mode_name)
    return tuple(max(f.lo, min(f.hi, 0)) for f in gdef.inputs)


async def _serve_async(kind: str, pipe: Pipe, frame_size: int) -> None:
    from aiohttp import web

    from engine.clock import FixedStep

    loop = asyncio.get_running_loop()
    app = web.Application()
    ticks: list[float] = []
    recording = [False]
    stats = {"attempted": 0, "overruns": 0, "inputs": 0, "ticks": 0}

    if kind == "node":
        from game_server.app import METRICS_KEY, NODE_KEY, build_app
        from game_server.metrics import Histogram
        from game_server.settings import NodeSettings

        class Recording(Histogram):
            def observe(self, value: float) -> None:
                super().observe(value)
                if recording[0]:
                    ticks.append(value)

        settings = NodeSettings(
            node_id="bench", outbox_path=os.path.join("var", "outbox-bench.sqlite3"),
            max_players=100_000, max_rooms=10_000, join_timeout=120, max_send_queue=32,
            # every client is on 127.0.0.1: the per-address caps (admission.py) would refuse them
            admission_exempt="127.0.0.1", first_message_timeout=120,
            game_overrides=OVERRIDES,
            # the bench measures cost past any budget: no refusal by headroom (capacity.py)
            cpu_budget=100.0)
        app = build_app(settings)
        # ... nor by skipped ticks: the bench drives the node past them on purpose
        import game_server.capacity as capacity
        capacity.OVERRUN_MIN_PLAYERS = 10 ** 9
        metrics = app[METRICS_KEY]
        metrics.tick_seconds = Recording()
        node = app[NODE_KEY]

        def attempted() -> int:
            return metrics.frames_out + metrics.queue_drops

        def overruns() -> int:
            return metrics.overruns

        def inputs() -> int:
            return metrics.inputs

        def room_ticks() -> int:
            return metrics.ticks

        def stop_sending() -> None:
            for room in list(node.rooms.values()):
                room.closed = True  # the task ends at its next wake-up; connections stay

        def mean_size() -> float:
            return metrics.bytes_out / max(1, metrics.frames_out)
    else:
        from game_server.websocket import bound_reads, ws_binary_frame

        clients: list = []  # baseline: WebSocketResponse; bare: the transports
        payload = bytes(max(1, frame_size))
        frame = ws_binary_frame(payload)

        async def handler(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse(compress=False)
            await ws.prepare(request)
            if kind == "bare":  # after aiohttp's upgrade, a bare protocol on the socket
                tr = request.transport
                assert tr is not None
                bound_reads(tr)  # the node's read size
                gone = loop.create_future()
                tr.set_protocol(_Bare(stats, gone))
                clients.append(tr)
                await gone
                clients.remove(tr)
                return ws
            clients.append(ws)
            async for _ in ws:
                stats["inputs"] += 1
            clients.remove(ws)
            return ws

        async def broadcast() -> None:
            clock = FixedStep(loop.time(), 1.0 / PATCH_HZ)
            perf = time.perf_counter
            while True:
                steps = clock.due(loop.time())
                if steps:
                    clock.advance(steps)
                    t0 = perf()
                    targets = list(clients)  # a client may leave during the awaits
                    stats["attempted"] += len(targets)
                    stats["ticks"] += 1
                    if kind == "bare":
                        for tr in targets:
                            tr.write(frame)
                    else:
                        for ws in targets:
                            try:  # noqa: SIM105  (the plainest loop: no context manager)
                                await ws.send_bytes(payload)
                            except ConnectionError:
                                pass
                    if recording[0]:
                        ticks.append(perf() - t0)
                stats["overruns"] = clock.overruns
                await asyncio.sleep(max(0.0, clock.next_deadline() - loop.time()))

        app.router.add_get("/play/websocket", handler)
        task: list[asyncio.Task] = []

        async def start(app: web.Application) -> None:
            task.append(loop.create_task(broadcast()))

        app.on_startup.append(start)

        def attempted() -> int:
            return stats["attempted"]

        def overruns() -> int:
            return stats["overruns"]

        def inputs() -> int:
            return stats["inputs"]

        def room_ticks() -> int:
            return stats["ticks"]

        def stop_sending() -> None:
            task[0].cancel()

        def mean_size() -> float:
            return float(len(payload))

    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, backlog=4096)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    pipe.send(port)
    window: dict = {}
    while True:
        while not pipe.poll():
            await asyncio.sleep(0.02)
        cmd = pipe.recv()
        if cmd == "start":
            if os.environ.get("BENCH_PROFILE"):  # a cProfile of the window, for digging
                import cProfile
                profile = cProfile.Profile()
                profile.enable()
            recording[0] = True
            window = {"cpu": time.process_time(), "attempted": attempted(), "inputs": inputs(),
                      "nivcsw": resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw,
                      "overruns": overruns(), "ticks": room_ticks(), "t": time.monotonic()}
        elif cmd == "stop":
            recording[0] = False
            if os.environ.get("BENCH_PROFILE"):
                profile.disable()
                profile.dump_stats(f"{os.environ['BENCH_PROFILE']}.{kind}")
            pipe.send({
                "cpu_s": time.process_time() - window["cpu"],
                "wall_s": time.monotonic() - window["t"],
                "attempted": attempted() - window["attempted"],
                "inputs": inputs() - window["inputs"],
                "overruns": overruns() - window["overruns"],
                "room_ticks": room_ticks() - window["ticks"],
                # the server lost its core to another process this often (contention)
                "preempted": resource.getrusage(resource.RUSAGE_SELF).ru_nivcsw - window["nivcsw"],
                "ticks": ticks[:],
            })
        elif cmd == "halt":   # stop sending; report totals once the clients drained
            stop_sending()
            await asyncio.sleep(0.5)
            pipe.send({"attempted_total": attempted(), "mean_frame_bytes": mean_size()})
        elif cmd == "exit":
            break
    await runner.cleanup()


# --- clients (one process) ------------------------------------------------------------------------

TRANSPORTS = ("websocket", "sockjs-websocket", "xhr-streaming")
#: The base64 starts of a keyframe (`[11, ...]`: fixarray of 5, then 11) and of a delta
#: (`[12, ...]`: fixarray of 8, then 12) after the quote that opens a SockJS message: no
#: other node message starts so (welcome is a fixarray of 6, event and error of 3 and 2),
#: and base64 has no quote, so counting them counts the state frames of a SockJS stream.
STATE_TOKENS = (b'"lQ', b'"mA')


def sockjs_state_frames(data: bytes, start: int = 0, end: int | None = None) -> int:
    """State frames (keyframes and deltas) in SockJS text `data[start:end]`."""
    end = len(data) if end is None else end
    return data.count(b'"lQ', start, end) + data.count(b'"mA', start, end)


def _zero_masked(payload: bytes, opcode: int = 0x2) -> bytes:
    """A client frame with the all-zero mask key (RFC 6455 allows any key): the payload
    goes as is, so the clients spend nothing on masking."""
    n = len(payload)
    b0 = 0x80 | opcode
    head = bytes((b0, 0x80 | n)) if n < 126 else struct.pack("!BBH", b0, 0x80 | 126, n)
    return head + b"\0\0\0\0" + payload


def _upgrade(path: str, port: int) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    return (f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n").encode()


class _Client(asyncio.Protocol):
    """A raw binary websocket client (`/play/websocket`): counts the state frames it gets."""

    __slots__ = ("buf", "frames", "handshaken", "node", "transport", "ready", "sent", "lost")
    kind = "websocket"

    def __init__(self, node: bool, ready: asyncio.Future):
        self.buf = b""
        self.frames = 0
        self.sent = 0
        self.handshaken = False
        self.node = node
        self.ready = ready
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self.lost = True
        if not self.ready.done():
            self.ready.set_result(False)

    @staticmethod
    def input_frame(payload: bytes) -> bytes:
        return _zero_masked(payload)

    def send_input(self, frame: bytes) -> None:
        tr = self.transport
        if not tr.is_closing():
            tr.write(frame)
            self.sent += 1

    def _read(self, data: bytes) -> bytes | None:
        """What is left of the last read, then `data`, past the HTTP handshake (None: the
        handshake is not complete yet)."""
        buf = self.buf + data if self.buf else data
        return buf if self.handshaken else self._handshake(buf)

    def _handshake(self, buf: bytes) -> bytes | None:
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            self.buf = buf
            return None
        self.handshaken = True
        if not self.ready.done():
            self.ready.set_result(buf.startswith(b"HTTP/1.1 101"))
        return buf[end + 4:]

    def data_received(self, data: bytes) -> None:
        buf = self._read(data)
        if buf is None:
            return
        i, n, count, node = 0, len(buf), 0, self.node
        while True:
            head, length = _frame_at(buf, i, n)
            if not head:
                break
            # node: count keyframes (11) and deltas (12) only; msgpack array header first
            if not node or (length > 1 and buf[i + head + 1] in (11, 12)):
                count += 1
            i += head + length
        self.frames += count
        self.buf = buf[i:] if i < n else b""


class _SockJSWSClient(_Client):
    """A SockJS websocket client (`/play/<server>/<session>/websocket`): text frames `o`,
    `a["<base64>",...]`, `c[...]`; counts the state frames in its `a` frames and answers
    the node's heartbeat pings. Sends `["<base64>"]` text frames."""

    __slots__ = ()
    kind = "sockjs-websocket"

    @staticmethod
    def input_frame(payload: bytes) -> bytes:
        return _zero_masked(b'["' + base64.b64encode(payload) + b'"]', 0x1)

    def data_received(self, data: bytes) -> None:
        buf = self._read(data)
        if buf is None:
            return
        i, n, count = 0, len(buf), 0
        while True:
            head, length = _frame_at(buf, i, n)
            if not head:
                break
            end = i + head + length
            op = buf[i] & 0x0F
            if op == 1:
                if length and buf[i + head] == 0x61:  # "a[...]"
                    count += buf.count(b'"lQ', i + head, end) + buf.count(b'"mA', i + head, end)
            elif op == 9:  # the heartbeat ping: pong with its payload
                self.transport.write(_zero_masked(buf[i + head:end], 0xA))
            i = end
        self.frames += count
        self.buf = buf[i:] if i < n else b""


class _XhrStream(asyncio.Protocol):
    """The receiving request of an xhr-streaming client: `POST .../xhr_streaming`, one
    response of `h`x2048, `o`, then `a[...]` lines until the node ends it (after
    `response_limit` bytes; it closes the connection): the owner opens the next one."""

    __slots__ = ("owner", "transport", "tail", "pre")

    def __init__(self, owner: _XhrClient):
        self.owner = owner
        self.tail = b""
        self.pre: bytes | None = b""  # the start of the response until `o` (then None)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        owner = self.owner
        transport.write(  # type: ignore[attr-defined]
            f"POST {owner.path}xhr_streaming HTTP/1.1\r\nHost: {owner.host}\r\n"
            "Content-Length: 0\r\nConnection: keep-alive\r\n\r\n".encode())

    def data_received(self, data: bytes) -> None:
        both = self.tail + data  # a token split across two reads (the tail holds 2 bytes)
        self.owner.frames += both.count(b'"lQ') + both.count(b'"mA')
        self.tail = data[-2:]
        if self.pre is not None:
            pre = self.pre + data
            if b"\no\n" in pre or b"\r\n0\r\n" in pre:
                self.pre = None
                ready = self.owner.ready
                if not ready.done():
                    ready.set_result(pre.startswith(b"HTTP/1.1 200") and b"\no\n" in pre)
            else:
                self.pre = pre

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.stream_lost(self)


class _XhrSend(asyncio.Protocol):
    """The sending connection of an xhr-streaming client (keep-alive): one `xhr_send`
    POST at a time, as sockjs-client does; what comes meanwhile goes in the next body."""

    __slots__ = ("owner", "transport", "buf")

    def __init__(self, owner: _XhrClient):
        self.owner = owner
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        owner = self.owner
        while True:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                break
            if buf[9:12] != b"204":  # a refusal (404, 413, 429: the node closes)
                owner.errors += 1
                buf = b""
                break
            buf = buf[end + 4:]
            owner.responded()
        self.buf = buf

    def connection_lost(self, exc: Exception | None) -> None:
        self.owner.lost = True


class _XhrClient:
    """An xhr-streaming client: one streaming POST (reopened when the node ends it) and
    one keep-alive connection for its `xhr_send` POSTs."""

    __slots__ = ("path", "host", "port", "frames", "sent", "errors", "ready", "stream",
                 "sender", "in_flight", "pending", "prefix", "lost", "running", "reopens", "posts")
    kind = "xhr-streaming"

    def __init__(self, path: str, port: int, ready: asyncio.Future):
        self.path = path
        self.port = port
        self.host = f"127.0.0.1:{port}"
        self.frames = 0
        self.sent = 0
        self.errors = 0
        self.reopens = 0
        self.posts = 0  # xhr_send requests (each may carry several inputs)
        self.ready = ready
        self.stream: _XhrStream | None = None
        self.sender: _XhrSend | None = None
        self.in_flight = False
        self.pending: list[bytes] = []
        self.prefix = (f"POST {path}xhr_send HTTP/1.1\r\nHost: {self.host}\r\n"
                       "Content-Type: text/plain;charset=UTF-8\r\nContent-Length: ").encode()
        self.lost = False
        self.running = True

    async def open(self) -> bool:
        loop = asyncio.get_running_loop()
        _, self.stream = await loop.create_connection(lambda: _XhrStream(self), "127.0.0.1",
                                                      self.port)
        if not await asyncio.wait_for(self.ready, 30):
            return False
        _, self.sender = await loop.create_connection(lambda: _XhrSend(self), "127.0.0.1",
                                                      self.port)
        return True

    def stream_lost(self, stream: _XhrStream) -> None:
        if not self.ready.done():
            self.ready.set_result(False)
        if self.running and stream is self.stream:  # the node ended the response: reopen
            self.reopens += 1
            loop = asyncio.get_running_loop()
            task = loop.create_task(loop.create_connection(lambda: _XhrStream(self),
                                                           "127.0.0.1", self.port))
            task.add_done_callback(self._reopened)

    def _reopened(self, task: asyncio.Task) -> None:
        if task.cancelled() or task.exception() is not None:
            self.errors += 1
            return
        self.stream = task.result()[1]

    @staticmethod
    def input_frame(payload: bytes) -> tuple[bytes, bytes]:
        b64 = base64.b64encode(payload)
        body = b'["' + b64 + b'"]'
        return b64, b"%d\r\n\r\n%s" % (len(body), body)

    def post(self, messages: list[bytes]) -> None:
        body = b'["' + b'","'.join(messages) + b'"]'
        self._write(b"%d\r\n\r\n%s" % (len(body), body), len(messages))

    def _write(self, rest: bytes, count: int) -> None:
        sender = self.sender
        if sender is None or self.lost:
            return
        tr = sender.transport
        if tr.is_closing():
            return
        self.in_flight = True
        tr.write(self.prefix + rest)
        self.sent += count
        self.posts += 1

    def send_input(self, frame: tuple[bytes, bytes]) -> None:
        if self.in_flight:  # a send is out: this one goes in the next body
            self.pending.append(frame[0])
        else:
            self._write(frame[1], 1)

    def responded(self) -> None:
        self.in_flight = False
        if self.pending:
            pending, self.pending = self.pending, []
            self.post(pending)

    def close(self) -> None:
        self.running = False
        for p in (self.stream, self.sender):
            if p is not None:
                p.transport.close()


def _clients(n: int, port: int, node: bool, pipe: Pipe, mode: str, input_hz: float = 0.0,
             transport: str = "websocket") -> None:
    _pin(1)
    _raise_nofile()
    coro = _clients_async(n, port, node, pipe, mode, input_hz, transport)
    if os.environ.get("BENCH_CLIENT_LOOP", "uvloop") == "uvloop":
        import uvloop
        uvloop.run(coro)
    else:
        asyncio.run(coro)


async def _send_inputs(clients: list, hz: float, values: tuple[int, ...]) -> None:
    """Every client sends one input `hz` times a second, spread over SLOTS instants of a
    period (a real fleet's inputs do not all arrive at once)."""
    import msgpack
    slots = 5
    period = 1.0 / hz
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    seq = 0
    k = 0
    packb = msgpack.packb
    make = type(clients[0]).input_frame
    frame = None
    while True:
        slot = k % slots
        if slot == 0:
            seq += 1
            frame = make(packb([3, seq, *values]))
        for c in clients[slot::slots]:
            c.send_input(frame)
        k += 1
        await asyncio.sleep(max(0.0, t0 + k * period / slots - loop.time()))


async def _clients_async(n: int, port: int, node: bool, pipe: Pipe, mode: str,
                         input_hz: float = 0.0, transport: str = "websocket") -> None:
    from engine import codec
    from engine.auth import issue_seat_token
    from game_server.settings import DEV_SEAT_SECRET

    loop = asyncio.get_running_loop()
    clients: list = []
    size = room_size(mode)

    def join(i: int) -> bytes:
        tok = issue_seat_token(DEV_SEAT_SECRET, user_id=i + 1, name=f"b{i}",
                               match_id=f"bench-{i // size}", node_id="bench",
                               now=time.time(), ttl=3600, mode=mode)
        return codec.encode(codec.Join(tok))

    async def connect(i: int) -> None:
        ready = loop.create_future()
        sid = os.urandom(16).hex()
        if transport == "xhr-streaming" and node:
            c = _XhrClient(f"/play/0/{sid}/", port, ready)
            if not await c.open():
                raise RuntimeError("xhr-streaming session refused")
            c.post([base64.b64encode(join(i))])
            c.sent = 0
            clients.append(c)
            return
        if transport == "sockjs-websocket" and node:
            cls: type[_Client] = _SockJSWSClient
            path = f"/play/0/{sid}/websocket"
        else:
            cls, path = _Client, "/play/websocket"
        _, proto = await loop.create_connection(lambda: cls(node, ready), "127.0.0.1", port)
        proto.transport.write(_upgrade(path, port))
        if not await asyncio.wait_for(ready, 30):
            raise RuntimeError("handshake refused")
        if node:
            proto.transport.write(cls.input_frame(join(i)))
        clients.append(proto)

    for start in range(0, n, 100):
        await asyncio.gather(*(connect(i) for i in range(start, min(n, start + 100))))
    sender = None
    if input_hz > 0:
        sender = loop.create_task(_send_inputs(clients, input_hz, input_values(mode)))
    pipe.send("ready")
    while True:
        while not pipe.poll():
            await asyncio.sleep(0.02)
        cmd = pipe.recv()
        if cmd == "snap":
            pipe.send({"received": sum(c.frames for c in clients),
                       "sent": sum(c.sent for c in clients),
                       "cpu": time.process_time(), "t": time.monotonic(),
                       "lost": sum(1 for c in clients if c.lost),
                       "errors": sum(getattr(c, "errors", 0) for c in clients),
                       "reopens": sum(getattr(c, "reopens", 0) for c in clients),
                       "posts": sum(getattr(c, "posts", 0) for c in clients)})
        elif cmd == "exit":
            break
    if sender is not None:
        sender.cancel()
    for c in clients:
        if isinstance(c, _XhrClient):
            c.close()
        else:
            c.transport.close()


# --- orchestration ----------------------------------------------------------------------------------

def run_one(kind: str, n: int, seconds: float, warmup: float, frame_size: int,
            mode: str | None = None, input_hz: float = 0.0, transport: str = "websocket") -> dict:
    """One run: a server (`kind` node or baseline) and `n` clients of `transport` (the
    baseline's clients are always raw websockets: it is a plain aiohttp websocket server)."""
    mode = mode or first_mode()
    transport = transport if kind == "node" else "websocket"
    ctx = mp.get_context("spawn")
    s_parent, s_child = ctx.Pipe()
    c_parent, c_child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(kind, s_child, frame_size), daemon=True)
    server.start()

    def snap() -> dict:
        c_parent.send("snap")
        return c_parent.recv()

    try:
        if not s_parent.poll(30):
            raise RuntimeError("server did not start")
        port = s_parent.recv()
        client = ctx.Process(target=_clients, daemon=True,
                             args=(n, port, kind == "node", c_child, mode, input_hz, transport))
        client.start()
        try:
            if not c_parent.poll(30 + n / 20):
                raise RuntimeError("clients did not connect")
            c_parent.recv()
            time.sleep(warmup)
            c0 = snap()
            s_parent.send("start")
            time.sleep(seconds)
            s_parent.send("stop")
            window = s_parent.recv()
            c1 = snap()
            s_parent.send("halt")
            totals = s_parent.recv()
            c2 = snap()
            c_parent.send("exit")
            s_parent.send("exit")
            client.join(30)
        finally:
            if client.is_alive():
                client.kill()
    finally:
        server.join(30)
        if server.is_alive():
            server.kill()
    received_total = c2["received"]
    delivered = received_total / max(1, totals["attempted_total"])
    frames_in_window = window["attempted"] * min(1.0, delivered)
    ticks = sorted(window["ticks"])
    due = window["room_ticks"] + window["overruns"]
    client_wall = c1["t"] - c0["t"]
    return {
        "kind": kind,
        "transport": transport,
        "clients": n,
        "input_hz": input_hz,
        "inputs_received": window["inputs"],
        "inputs_per_s": round(window["inputs"] / window["wall_s"]),
        "inputs_expected_per_s": round(n * input_hz),
        "inputs_sent_in_window": c1["sent"] - c0["sent"],
        "seconds": round(window["wall_s"], 2),
        "server_cpu_s": round(window["cpu_s"], 3),
        "server_cpu_share": round(window["cpu_s"] / window["wall_s"], 3),
        "client_cpu_share": round((c1["cpu"] - c0["cpu"]) / max(1e-9, client_wall), 3),
        "client_window_s": round(client_wall, 2),
        "frames_per_s": round(frames_in_window / window["wall_s"]),
        "frames_in_window": round(frames_in_window),
        "cpu_us_per_frame": round(window["cpu_s"] * 1e6 / max(1.0, frames_in_window), 2),
        "received_in_window": c1["received"] - c0["received"],
        "delivered_fraction": round(delivered, 5),
        "frames_attempted_total": totals["attempted_total"],
        "frames_received_total": received_total,
        "mean_frame_bytes": round(totals["mean_frame_bytes"], 1),
        "tick_p50_ms": round(1e3 * ticks[len(ticks) // 2], 3) if ticks else None,
        "tick_p99_ms": round(1e3 * ticks[int(len(ticks) * 0.99)], 3) if ticks else None,
        "tick_mean_ms": round(1e3 * statistics.fmean(ticks), 3) if ticks else None,
        "overruns": window["overruns"],
        "room_ticks": window["room_ticks"],
        # skipped ticks / ticks due (the node's rooms, or the baseline's one loop)
        "overrun_share": round(window["overruns"] / max(1, due), 5),
        "client_lost": c2["lost"],
        "client_errors": c2["errors"],
        "stream_reopens": c2["reopens"],
        # xhr-streaming: xhr_send POSTs in the window (fewer than inputs: batched while one
        # was out, as sockjs-client does when the node answers late)
        "posts_in_window": c1["posts"] - c0["posts"],
        "preempted": window["preempted"],
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }


def room_tick_cost(ticks: int = 3000, bots: bool = False, mode: str | None = None) -> dict:
    """In-process: CPU µs of one room tick's non-network work (the game's step, entities,
    delta, encode, websocket framing) -- what the node does that the baseline does not.
    Idle players as in the benchmark's rooms, or (`bots`) the game's bots playing, for
    comparison with a live match."""
    from engine.codec import make_delta
    from engine.registry import registry
    from game_server.connection import Frame
    from game_server.room import encode_delta
    from game_server.websocket import WS_BINARY, ws_binary_frame

    mode = mode or first_mode()
    gdef, _ = registry().mode(mode)
    game = gdef.new(mode, 1, **OVERRIDES)
    size = room_size(mode)
    for i in range(size):
        game.join(i + 1, f"b{i}", bot=bots)
    prev = game.entities()
    game.drain_events()
    t0 = time.process_time()
    for _ in range(ticks):
        game.step()
        cur = game.entities()
        frame = Frame(encode_delta(game.tick, game.tick - 1, game.clock, *make_delta(prev, cur),
                                   game.drain_events()))
        frame.rendered(WS_BINARY, ws_binary_frame)
        prev = cur
    us = (time.process_time() - t0) * 1e6 / ticks
    return {"room_tick_us": round(us, 2), "per_frame_us": round(us / size, 2)}


def per_input_us(passive: dict, playing: dict) -> float:
    """CPU µs per input message of a playing run: its CPU less what its frames cost at the
    passive run's µs per frame, over the inputs the server received in its window."""
    extra = playing["server_cpu_s"] * 1e6 - playing["frames_in_window"] * passive["cpu_us_per_frame"]
    return round(extra / max(1, playing["inputs_received"]), 2)


def inputs_summary(runs: dict[str, list[dict]], playing: dict[str, list[dict]], hz: float) -> dict:
    """Per input message, node, baseline and floor: the median over repeats of (playing run,
    the passive run just before it)."""
    per = {k: [per_input_us(a, b) for a, b in zip(runs[k], playing[k], strict=True)]
           for k in runs}
    node_play = playing["node"]
    return {
        "input_hz": hz,
        "node_us_per_input": statistics.median(per["node"]),
        "baseline_us_per_input": statistics.median(per["baseline"]),
        "node_us_per_input_runs": per["node"],
        "baseline_us_per_input_runs": per["baseline"],
        "bare_us_per_input": statistics.median(per["bare"]),
        "bare_us_per_input_runs": per["bare"],
        "node_us_per_frame_playing": statistics.median(r["cpu_us_per_frame"] for r in node_play),
        "node_cpu_share_playing": statistics.median(r["server_cpu_share"] for r in node_play),
        "node_inputs_per_s": statistics.median(r["inputs_per_s"] for r in node_play),
        "node_delivered_fraction": min(r["delivered_fraction"] for r in node_play),
        "node_overruns": sum(r["overruns"] for r in node_play),
        "node_overrun_share": max(r["overrun_share"] for r in node_play),
        "client_cpu_share_playing": max(r["client_cpu_share"] for r in node_play),
        "runs": playing,
    }


HEADER = (f"{'N':>5} {'kind':>11} {'µs/frame':>9} {'frames/s':>9} {'cpu':>5} {'clients':>7} "
          f"{'delivered':>10} {'tick p50':>9} {'tick p99':>9} {'overruns':>8} {'inputs/s':>8} "
          f"{'bytes':>6} {'preempted':>9} {'load':>5}")


def row(r: dict) -> str:
    """One run as a table row (`clients`: the client process's CPU share: near 1.00 it
    was the limit; `overruns`: skipped ticks and their share of the ticks due)."""
    kind = r["kind"] + ("+in" if r["input_hz"] else "")
    p50 = f"{r['tick_p50_ms']:>8.3f}m" if r["tick_p50_ms"] is not None else f"{'-':>9}"
    p99 = f"{r['tick_p99_ms']:>8.3f}m" if r["tick_p99_ms"] is not None else f"{'-':>9}"
    return (f"{r['clients']:>5} {kind:>11} {r['cpu_us_per_frame']:>9.2f} {r['frames_per_s']:>9} "
            f"{r['server_cpu_share']:>5.2f} {r['client_cpu_share']:>7.2f} "
            f"{r['delivered_fraction']:>10.5f} {p50} {p99} "
            f"{r['overruns']:>8} {r['inputs_per_s']:>8} {r['mean_frame_bytes']:>6.0f} "
            f"{r['preempted']:>9} {r['load_avg_1m']:>5.2f}")


def verdict(r: dict, delivered: float = 0.999, overruns: float = 0.01) -> str:
    """'pass' when the node delivered at least `delivered` of its frames with at most
    `overruns` of its ticks skipped; 'client-limited' when the clients did not send their
    inputs or lost connections (the run then says nothing of the node); 'contended' when it
    failed with the node under `CONTENDED_BELOW` of its core; else 'fail'."""
    if r["client_lost"] or r["client_errors"] or \
            (r["input_hz"] and r["inputs_sent_in_window"] < 0.98 * r["clients"] * r["input_hz"]
             * r.get("client_window_s", r["seconds"])):
        return "client-limited"
    ok = r["delivered_fraction"] >= delivered and r["overrun_share"] <= overruns
    if ok:
        return "pass"
    # failed while the node had well under its core: other work took it (a shared machine)
    return "contended" if r["server_cpu_share"] < CONTENDED_BELOW else "fail"


#: a failed run in which the node used less than this share of its core did not show its
#: capacity: another process had the core (`find_capacity` runs that N again)
CONTENDED_BELOW = 0.85


def find_capacity(args: argparse.Namespace) -> dict:
    """The largest N, a multiple of `cap_step` up to `cap_max`, at which a playing node run
    passes (`verdict`): a bisection, assuming a run that passes at N passes below it."""
    step = args.cap_step
    lo, hi = 0, (args.cap_max // step + 1) * step   # lo passes (trivially), hi is taken to fail
    runs: list[dict] = []
    limited = None
    while hi - lo > step:
        mid = (lo + hi) // 2 // step * step
        for _attempt in range(1 + args.cap_retries):  # a contended run is run again
            r = run_one("node", mid, args.seconds, args.warmup, 0, args.mode, args.input_hz,
                        args.transport)
            r["verdict"] = verdict(r)
            runs.append(r)
            print(row(r) + f"  {r['verdict']}", flush=True)
            if r["verdict"] != "contended":
                break
        if r["verdict"] == "pass":
            lo = mid
        else:  # fail; contended every time: taken as a fail (the JSON counts them)
            if r["verdict"] == "client-limited":
                limited = mid
            hi = mid
    best = next((r for r in runs if r["clients"] == lo and r["verdict"] == "pass"), None)
    return {
        "transport": args.transport,
        "input_hz": args.input_hz,
        "step": step,
        "max_tried": args.cap_max,
        "criteria": {"delivered_fraction>=": 0.999, "overrun_share<=": 0.01},
        "contended_runs": sum(1 for r in runs if r["verdict"] == "contended"),
        "players_per_core": lo,
        "at_least": lo >= args.cap_max,    # passed at the top of the range: capacity is above
        "client_limited_at": limited,      # the clients, not the node, failed this N
        "node_cpu_share_at_capacity": best["server_cpu_share"] if best else None,
        "node_ms_per_player_s_at_capacity":
            round(best["server_cpu_s"] * 1e3 / (best["seconds"] * lo), 4) if best else None,
        "runs": runs,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m game_server.bench", description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, nargs="+", default=[1000, 2000])
    p.add_argument("--seconds", type=float, default=10.0, help="measured window per run")
    p.add_argument("--warmup", type=float, default=3.0)
    p.add_argument("--repeat", type=int, default=1, help="runs per (kind, N); medians reported")
    p.add_argument("--mode", default=None,
                   help="the game mode the rooms play (a registered mode; default the first)")
    p.add_argument("--input-hz", type=float, default=0.0,
                   help="also run every N with clients sending this many inputs/s each "
                        "(input mode; 20 as real players)")
    p.add_argument("--transport", choices=TRANSPORTS, default="websocket",
                   help="the node's clients: raw binary websocket, SockJS websocket or SockJS "
                        "xhr-streaming (the baseline stays a plain aiohttp binary websocket)")
    p.add_argument("--find-capacity", action="store_true",
                   help="instead: bisect for the largest N of playing players (--input-hz, "
                        "default 20) at which the node delivers >= 99.9%% of its frames with "
                        "<= 1%% of its ticks skipped")
    p.add_argument("--cap-step", type=int, default=250, help="capacity resolution (players)")
    p.add_argument("--cap-max", type=int, default=5000, help="largest N the sweep tries")
    p.add_argument("--cap-retries", type=int, default=2,
                   help="runs again an N that failed while the node had under "
                        f"{100 * CONTENDED_BELOW:.0f}%% of its core (another process had it)")
    p.add_argument("--out", default=os.path.join("reports", "node-bench.json"))
    args = p.parse_args(argv)
    from engine.registry import registry
    args.mode = args.mode or first_mode()
    if args.mode not in registry().modes:
        p.error(f"unknown mode {args.mode!r}; registered: {', '.join(registry().modes)}")
    size = room_size(args.mode)
    report: dict = {
        "benchmark": "game_server.bench",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "mode": args.mode,
        "transport": args.transport,
        "baseline": "plain aiohttp binary websocket (send_bytes; async for msg in ws)",
        "client_loop": os.environ.get("BENCH_CLIENT_LOOP", "uvloop"),
        "server_loop": server_loop(),
        "room_size": size,
        "patch_hz": PATCH_HZ,
        "window_s": args.seconds,
        "repeat": args.repeat,
        "load_avg_start": [round(x, 2) for x in os.getloadavg()],
    }
    if args.find_capacity:
        args.input_hz = args.input_hz or 20.0
        print(f"capacity of one node core, {args.transport} clients sending {args.input_hz:g} "
              f"inputs/s: largest N (step {args.cap_step}, up to {args.cap_max}) with "
              f"delivered >= 99.9% and overruns <= 1% of ticks; node on {report['server_loop']}, "
              f"clients on {report['client_loop']}", flush=True)
        print(HEADER, flush=True)
        cap = find_capacity(args)
        report["capacity"] = cap
        print(f"capacity ({args.transport}, {args.input_hz:g} inputs/s): "
              f"{'at least ' if cap['at_least'] else ''}{cap['players_per_core']} playing players "
              f"per core (node CPU share there {cap['node_cpu_share_at_capacity']}, "
              f"{cap['node_ms_per_player_s_at_capacity']} ms per player-second)"
              + (f"; the clients were the limit at {cap['client_limited_at']}"
                 if cap["client_limited_at"] else ""), flush=True)
        return _write(report, args.out)

    results = []
    sim = room_tick_cost(mode=args.mode)
    busy = room_tick_cost(bots=True, mode=args.mode)
    print(f"mode {args.mode}: room tick without I/O (sim, delta, encode): {sim['room_tick_us']} µs "
          f"= {sim['per_frame_us']} µs per frame at {size} clients "
          f"({size} bots playing: {busy['room_tick_us']} µs = {busy['per_frame_us']} µs per frame)",
          flush=True)
    print(f"servers on {report['server_loop']}, clients on {report['client_loop']}", flush=True)
    if args.transport != "websocket":
        print(f"node clients: {args.transport}; baseline: a plain aiohttp binary websocket "
              "(raw websocket clients), not SockJS", flush=True)
    print(HEADER, flush=True)
    for n in args.clients:
        kinds = ("node", "baseline", "bare") if args.input_hz > 0 else ("node", "baseline")
        runs: dict[str, list[dict]] = {k: [] for k in kinds}
        playing: dict[str, list[dict]] = {k: [] for k in kinds}
        for _ in range(args.repeat):
            node = run_one("node", n, args.seconds, args.warmup, 0, args.mode,
                           transport=args.transport)
            runs["node"].append(node)
            fsize = {"node": 0, "baseline": round(node["mean_frame_bytes"]),
                     "bare": round(node["mean_frame_bytes"])}
            done = [node]
            for kind in kinds[1:]:  # the baseline (and in input mode the floor), passive
                r = run_one(kind, n, args.seconds, args.warmup, fsize[kind], args.mode)
                runs[kind].append(r)
                done.append(r)
            if args.input_hz > 0:  # every kind again, the clients playing
                for kind in kinds:
                    r = run_one(kind, n, args.seconds, args.warmup, fsize[kind], args.mode,
                                args.input_hz, args.transport)
                    playing[kind].append(r)
                    done.append(r)
            for r in done:
                print(row(r), flush=True)
        med = {k: statistics.median(r["cpu_us_per_frame"] for r in v) for k, v in runs.items()}
        ratio = med["node"] / med["baseline"]
        node_runs = runs["node"]
        summary = {
            "clients": n,
            "transport": args.transport,
            "node_us_per_frame": med["node"],
            "baseline_us_per_frame": med["baseline"],
            "ratio": round(ratio, 3),
            "node_delivered_fraction": min(r["delivered_fraction"] for r in node_runs),
            "node_tick_p50_ms": statistics.median(r["tick_p50_ms"] for r in node_runs),
            "node_tick_p99_ms": statistics.median(r["tick_p99_ms"] for r in node_runs),
            "node_overruns": sum(r["overruns"] for r in node_runs),
            "client_cpu_share_max": max(r["client_cpu_share"] for r in node_runs),
            "targets_met": {
                "ratio<=1.0": ratio <= 1.0,
                "delivered>=99.9%": min(r["delivered_fraction"] for r in node_runs) >= 0.999,
                "no_overruns": sum(r["overruns"] for r in node_runs) == 0,
            },
            "runs": runs,
        }
        print(f"N={n}: node ({args.transport}) {med['node']:.2f} µs/frame, baseline (aiohttp "
              f"websocket) {med['baseline']:.2f} µs/frame, ratio {ratio:.2f}", flush=True)
        if args.input_hz > 0:
            summary["inputs"] = inputs_summary(runs, playing, args.input_hz)
            i = summary["inputs"]
            print(f"N={n} playing ({args.input_hz:g} inputs/s each, {args.transport}): node "
                  f"{i['node_us_per_input']:.2f} µs/input, baseline (aiohttp read loop) "
                  f"{i['baseline_us_per_input']:.2f} µs/input, floor (bare protocol) "
                  f"{i['bare_us_per_input']:.2f} µs/input, node delivered "
                  f"{i['node_delivered_fraction']:.5f}, overruns {i['node_overruns']} "
                  f"({100 * i['node_overrun_share']:.2f}% of ticks), client process CPU "
                  f"{i['client_cpu_share_playing']:.2f} of a core", flush=True)
        results.append(summary)
    report["room_tick_without_io"] = sim
    report["room_tick_without_io_16_bots"] = busy
    report["results"] = results
    return _write(report, args.out)


def _write(report: dict, out: str) -> int:
    report["load_avg_end"] = [round(x, 2) for x in os.getloadavg()]
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"load average {report['load_avg_start']} -> {report['load_avg_end']}; report: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
