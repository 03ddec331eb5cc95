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
measured window to `/tmp/x.node` and `/tmp/x.baseline`; `BENCH_LOOP=uvloop` runs both servers
on uvloop.

`--input-hz 20` adds the **input mode**: each N is run four times, node and baseline each
passive and playing, where every client also sends one input message 20 times a second as
a real player does (`[3, seq, *values]`, masked, idle values: no movement, no fire, so
that the simulation's own cost does not change). The baseline then also reads every
message (`async for msg in ws`, aiohttp's plain read loop). Per input message:
(CPU of the playing run - its frames x the passive run's µs per frame) / inputs received,
for the node and the baseline; the report's `inputs` section holds both.
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


def _masked_frame(payload: bytes) -> bytes:
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    mask = os.urandom(4)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


# --- servers (one process each) -----------------------------------------------------------------

def _serve(kind: str, pipe: Pipe, frame_size: int) -> None:
    _pin(0)
    _raise_nofile()
    if os.environ.get("BENCH_LOOP") == "uvloop":  # the servers on uvloop (both of them)
        import uvloop
        uvloop.install()
    asyncio.run(_serve_async(kind, pipe, frame_size))


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
    stats = {"attempted": 0, "overruns": 0, "inputs": 0}

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
            **({"cpu_budget": 100.0} if "cpu_budget" in NodeSettings.__dataclass_fields__ else {}))
        app = build_app(settings)
        metrics = app[METRICS_KEY]
        metrics.tick_seconds = Recording()
        node = app[NODE_KEY]

        def attempted() -> int:
            return metrics.frames_out + metrics.queue_drops

        def overruns() -> int:
            return metrics.overruns

        def inputs() -> int:
            return metrics.inputs

        def stop_sending() -> None:
            for room in list(node.rooms.values()):
                room.closed = True  # the task ends at its next wake-up; connections stay

        def mean_size() -> float:
            return metrics.bytes_out / max(1, metrics.frames_out)
    else:
        from game_server.websocket import ws_binary_frame  # noqa: F401  (same import cost)

        clients: list[web.WebSocketResponse] = []
        payload = bytes(max(1, frame_size))

        async def handler(request: web.Request) -> web.StreamResponse:
            ws = web.WebSocketResponse(compress=False)
            await ws.prepare(request)
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
                      "overruns": overruns(), "t": time.monotonic()}
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

class _Client(asyncio.Protocol):
    __slots__ = ("buf", "frames", "handshaken", "node", "transport", "ready", "sent")

    def __init__(self, node: bool, ready: asyncio.Future):
        self.buf = b""
        self.frames = 0
        self.sent = 0
        self.handshaken = False
        self.node = node
        self.ready = ready

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.handshaken:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            self.handshaken = True
            if not self.ready.done():
                self.ready.set_result(buf.startswith(b"HTTP/1.1 101"))
            buf = buf[end + 4:]
        i, n, count, node = 0, len(buf), 0, self.node
        while i + 2 <= n:
            length = buf[i + 1] & 0x7F
            head = 2
            if length == 126:
                if i + 4 > n:
                    break
                length = (buf[i + 2] << 8) | buf[i + 3]
                head = 4
            elif length == 127:
                if i + 10 > n:
                    break
                length = int.from_bytes(buf[i + 2:i + 10], "big")
                head = 10
            if i + head + length > n:
                break
            # node: count keyframes (11) and deltas (12) only; msgpack array header first
            if not node or (length > 1 and buf[i + head + 1] in (11, 12)):
                count += 1
            i += head + length
        self.frames += count
        self.buf = buf[i:] if i < n else b""


def _clients(n: int, port: int, node: bool, pipe: Pipe, mode: str, input_hz: float = 0.0) -> None:
    _pin(1)
    _raise_nofile()
    asyncio.run(_clients_async(n, port, node, pipe, mode, input_hz))


def _zero_masked(payload: bytes) -> bytes:
    """A client frame with the all-zero mask key (RFC 6455 allows any key): the payload
    goes as is, so the clients spend nothing on masking."""
    n = len(payload)
    head = bytes((0x82, 0x80 | n)) if n < 126 else struct.pack("!BBH", 0x82, 0x80 | 126, n)
    return head + b"\0\0\0\0" + payload


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
    while True:
        slot = k % slots
        if slot == 0:
            seq += 1
            frame = _zero_masked(packb([3, seq, *values]))
        for c in clients[slot::slots]:
            tr = c.transport
            if not tr.is_closing():
                tr.write(frame)
                c.sent += 1
        k += 1
        await asyncio.sleep(max(0.0, t0 + k * period / slots - loop.time()))


async def _clients_async(n: int, port: int, node: bool, pipe: Pipe, mode: str,
                         input_hz: float = 0.0) -> None:
    from engine import codec
    from engine.auth import issue_seat_token
    from game_server.settings import DEV_SEAT_SECRET

    loop = asyncio.get_running_loop()
    clients: list[_Client] = []
    size = room_size(mode)

    async def connect(i: int) -> None:
        ready = loop.create_future()
        key = base64.b64encode(os.urandom(16)).decode()
        _, proto = await loop.create_connection(lambda: _Client(node, ready), "127.0.0.1", port)
        proto.transport.write((f"GET /play/websocket HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
                               "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                               f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
                               ).encode())
        if not await asyncio.wait_for(ready, 30):
            raise RuntimeError("handshake refused")
        if node:
            tok = issue_seat_token(DEV_SEAT_SECRET, user_id=i + 1, name=f"b{i}",
                                   match_id=f"bench-{i // size}", node_id="bench",
                                   now=time.time(), ttl=3600, mode=mode)
            proto.transport.write(_masked_frame(codec.encode(codec.Join(tok))))
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
        if cmd == "count":
            pipe.send(sum(c.frames for c in clients))
        elif cmd == "sent":
            pipe.send(sum(c.sent for c in clients))
        elif cmd == "exit":
            break
    if sender is not None:
        sender.cancel()
    for c in clients:
        c.transport.close()


# --- orchestration ----------------------------------------------------------------------------------

def run_one(kind: str, n: int, seconds: float, warmup: float, frame_size: int,
            mode: str | None = None, input_hz: float = 0.0) -> dict:
    mode = mode or first_mode()
    ctx = mp.get_context("spawn")
    s_parent, s_child = ctx.Pipe()
    c_parent, c_child = ctx.Pipe()
    server = ctx.Process(target=_serve, args=(kind, s_child, frame_size), daemon=True)
    server.start()
    try:
        if not s_parent.poll(30):
            raise RuntimeError("server did not start")
        port = s_parent.recv()
        client = ctx.Process(target=_clients, args=(n, port, kind == "node", c_child, mode, input_hz),
                             daemon=True)
        client.start()
        try:
            if not c_parent.poll(120):
                raise RuntimeError("clients did not connect")
            c_parent.recv()
            time.sleep(warmup)
            c_parent.send("count")
            received0 = c_parent.recv()
            c_parent.send("sent")
            sent0 = c_parent.recv()
            s_parent.send("start")
            time.sleep(seconds)
            s_parent.send("stop")
            window = s_parent.recv()
            c_parent.send("count")
            received1 = c_parent.recv()
            c_parent.send("sent")
            sent1 = c_parent.recv()
            s_parent.send("halt")
            totals = s_parent.recv()
            c_parent.send("count")
            received_total = c_parent.recv()
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
    delivered = received_total / max(1, totals["attempted_total"])
    frames_in_window = window["attempted"] * min(1.0, delivered)
    ticks = sorted(window["ticks"])
    return {
        "kind": kind,
        "clients": n,
        "input_hz": input_hz,
        "inputs_received": window["inputs"],
        "inputs_per_s": round(window["inputs"] / window["wall_s"]),
        "inputs_sent_in_window": sent1 - sent0,
        "seconds": round(window["wall_s"], 2),
        "server_cpu_s": round(window["cpu_s"], 3),
        "server_cpu_share": round(window["cpu_s"] / window["wall_s"], 3),
        "frames_per_s": round(frames_in_window / window["wall_s"]),
        "frames_in_window": round(frames_in_window),
        "cpu_us_per_frame": round(window["cpu_s"] * 1e6 / max(1.0, frames_in_window), 2),
        "received_in_window": received1 - received0,
        "delivered_fraction": round(delivered, 5),
        "frames_attempted_total": totals["attempted_total"],
        "frames_received_total": received_total,
        "mean_frame_bytes": round(totals["mean_frame_bytes"], 1),
        "tick_p50_ms": round(1e3 * ticks[len(ticks) // 2], 3) if ticks else None,
        "tick_p99_ms": round(1e3 * ticks[int(len(ticks) * 0.99)], 3) if ticks else None,
        "tick_mean_ms": round(1e3 * statistics.fmean(ticks), 3) if ticks else None,
        "overruns": window["overruns"],
        "preempted": window["preempted"],
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
    """Per input message, node and baseline: the median over repeats of (playing run,
    the passive run just before it)."""
    per = {k: [per_input_us(a, b) for a, b in zip(runs[k], playing[k], strict=True)]
           for k in ("node", "baseline")}
    node_play = playing["node"]
    return {
        "input_hz": hz,
        "node_us_per_input": statistics.median(per["node"]),
        "baseline_us_per_input": statistics.median(per["baseline"]),
        "node_us_per_input_runs": per["node"],
        "baseline_us_per_input_runs": per["baseline"],
        "node_us_per_frame_playing": statistics.median(r["cpu_us_per_frame"] for r in node_play),
        "node_cpu_share_playing": statistics.median(r["server_cpu_share"] for r in node_play),
        "node_inputs_per_s": statistics.median(r["inputs_per_s"] for r in node_play),
        "node_delivered_fraction": min(r["delivered_fraction"] for r in node_play),
        "node_overruns": sum(r["overruns"] for r in node_play),
        "runs": playing,
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
    p.add_argument("--out", default=os.path.join("reports", "node-bench.json"))
    args = p.parse_args(argv)
    from engine.registry import registry
    args.mode = args.mode or first_mode()
    if args.mode not in registry().modes:
        p.error(f"unknown mode {args.mode!r}; registered: {', '.join(registry().modes)}")
    size = room_size(args.mode)

    results = []
    sim = room_tick_cost(mode=args.mode)
    busy = room_tick_cost(bots=True, mode=args.mode)
    print(f"mode {args.mode}: room tick without I/O (sim, delta, encode): {sim['room_tick_us']} µs "
          f"= {sim['per_frame_us']} µs per frame at {size} clients "
          f"({size} bots playing: {busy['room_tick_us']} µs = {busy['per_frame_us']} µs per frame)",
          flush=True)
    print(f"{'N':>5} {'kind':>11} {'µs/frame':>9} {'frames/s':>9} {'cpu':>5} {'delivered':>10} "
          f"{'tick p50':>9} {'tick p99':>9} {'overruns':>8} {'bytes':>6} {'preempted':>9}")
    for n in args.clients:
        runs: dict[str, list[dict]] = {"node": [], "baseline": []}
        playing: dict[str, list[dict]] = {"node": [], "baseline": []}
        for _ in range(args.repeat):
            node = run_one("node", n, args.seconds, args.warmup, 0, args.mode)
            runs["node"].append(node)
            base = run_one("baseline", n, args.seconds, args.warmup,
                           round(node["mean_frame_bytes"]), args.mode)
            runs["baseline"].append(base)
            done = [node, base]
            if args.input_hz > 0:  # the same pair again, the clients sending inputs
                for kind, size in (("node", 0), ("baseline", round(node["mean_frame_bytes"]))):
                    r = run_one(kind, n, args.seconds, args.warmup, size, args.mode, args.input_hz)
                    playing[kind].append(r)
                    done.append(r)
            for r in done:
                kind = r["kind"] + ("+in" if r["input_hz"] else "")
                print(f"{n:>5} {kind:>11} {r['cpu_us_per_frame']:>9.2f} {r['frames_per_s']:>9} "
                      f"{r['server_cpu_share']:>5.2f} {r['delivered_fraction']:>10.5f} "
                      f"{r['tick_p50_ms']:>8.3f}m {r['tick_p99_ms']:>8.3f}m {r['overruns']:>8} "
                      f"{r['mean_frame_bytes']:>6.0f} {r['preempted']:>9}", flush=True)
        med = {k: statistics.median(r["cpu_us_per_frame"] for r in v) for k, v in runs.items()}
        ratio = med["node"] / med["baseline"]
        node_runs = runs["node"]
        summary = {
            "clients": n,
            "node_us_per_frame": med["node"],
            "baseline_us_per_frame": med["baseline"],
            "ratio": round(ratio, 3),
            "node_delivered_fraction": min(r["delivered_fraction"] for r in node_runs),
            "node_tick_p50_ms": statistics.median(r["tick_p50_ms"] for r in node_runs),
            "node_tick_p99_ms": statistics.median(r["tick_p99_ms"] for r in node_runs),
            "node_overruns": sum(r["overruns"] for r in node_runs),
            "targets_met": {
                "ratio<=1.0": ratio <= 1.0,
                "delivered>=99.9%": min(r["delivered_fraction"] for r in node_runs) >= 0.999,
                "no_overruns": sum(r["overruns"] for r in node_runs) == 0,
            },
            "runs": runs,
        }
        print(f"N={n}: node {med['node']:.2f} µs/frame, baseline {med['baseline']:.2f} µs/frame, "
              f"ratio {ratio:.2f}", flush=True)
        if args.input_hz > 0:
            summary["inputs"] = inputs_summary(runs, playing, args.input_hz)
            i = summary["inputs"]
            print(f"N={n} playing ({args.input_hz:g} inputs/s each): node {i['node_us_per_input']:.2f} "
                  f"µs/input, baseline (aiohttp read loop) {i['baseline_us_per_input']:.2f} µs/input, "
                  f"node delivered {i['node_delivered_fraction']:.5f}, "
                  f"overruns {i['node_overruns']}", flush=True)
        results.append(summary)
    report = {
        "benchmark": "game_server.bench",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
        "mode": args.mode,
        "room_size": size,
        "patch_hz": PATCH_HZ,
        "window_s": args.seconds,
        "repeat": args.repeat,
        "room_tick_without_io": sim,
        "room_tick_without_io_16_bots": busy,
        "results": results,
    }
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    with open(args.out, "w") as f:
        json.dump(report, f, indent=2)
    print(f"report: {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
