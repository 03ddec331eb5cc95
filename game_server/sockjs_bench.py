"""What a state frame costs the node on the SockJS websocket transport.

    python -m game_server.sockjs_bench [--clients 500] [--rounds 100] [--hz 20] [--json PATH]

N websocket clients in a second process; the server (this process) sends `rounds`
frames to each at `hz`, one way per run, and measures its own CPU time per delivered
frame (`time.process_time`, so the clients' work is not counted):

- `bare-send_str`: a plain aiohttp websocket, `await ws.send_str(text)` per client (the
  baseline of /work/shared/PERFORMANCE.md, with the same SockJS text);
- `sockjs-direct`: `SockJSConnection.send(frame)` (the frame built once, written as is);
- `sockjs-queued`: the same sessions through the session queue (`send_text`: the
  package's per-session path, its writer task and `send_str`);
- `package-broadcast`: the plain `sockjs` package's `SessionManager.broadcast`.

Prints a table and the ratio to the baseline; writes a JSON report. Figures vary with the
machine's load: compare ways within one run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

import aiohttp
import sockjs
from aiohttp import web

from .connection import Connection, Frame
from .sockjs_transport import SockJSConnection, add_sockjs_routes, sockjs_text

MODES = ("bare-send_str", "sockjs-direct", "sockjs-queued", "package-broadcast")
PATHS = {"bare-send_str": "/bare", "sockjs-direct": "/ours/0/{i}/websocket",
         "sockjs-queued": "/ours/0/{i}/websocket", "package-broadcast": "/pkg/0/{i}/websocket"}


class _Collector:
    def __init__(self) -> None:
        self.conns: list[SockJSConnection] = []

    def connection_made(self, conn: Connection) -> None:
        assert isinstance(conn, SockJSConnection)
        self.conns.append(conn)

    def message_received(self, conn: Connection, data: bytes | str) -> None:
        pass

    def connection_lost(self, conn: Connection) -> None:
        if conn in self.conns:
            self.conns.remove(conn)


async def _server(args: argparse.Namespace) -> dict:
    ours = _Collector()
    bare: list[web.WebSocketResponse] = []

    async def bare_ws(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(compress=False)
        await ws.prepare(request)
        bare.append(ws)
        async for _ in ws:
            pass
        bare.remove(ws)
        return ws

    async def pkg_handler(manager, session, msg) -> None:
        pass

    app = web.Application()
    app.router.add_get("/bare", bare_ws)
    add_sockjs_routes(app, ours, prefix="/ours", name="ours", max_send_queue=args.rounds + 2)
    sockjs.add_endpoint(app, pkg_handler, name="pkg", prefix="/pkg", cookie_needed=False)
    pkg = sockjs.get_manager("pkg", app)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    payload = os.urandom(args.payload)
    results = {}
    try:
        for mode in MODES:
            results[mode] = await _run_mode(mode, port, args, payload, ours, bare, pkg)
            r = results[mode]
            print(f"{mode:18} {r['us_per_frame']:7.2f} us/frame  delivered "
                  f"{r['delivered_fraction'] * 100:6.2f}%", flush=True)
    finally:
        await runner.cleanup()
    base = results["bare-send_str"]["us_per_frame"]
    for r in results.values():
        r["ratio_to_bare"] = round(r["us_per_frame"] / base, 3) if base else None
    return results


async def _run_mode(mode: str, port: int, args: argparse.Namespace, payload: bytes,
                    ours: _Collector, bare: list, pkg: sockjs.SessionManager) -> dict:
    url = f"http://127.0.0.1:{port}" + PATHS[mode]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "game_server.sockjs_bench", "--client", url,
        "--clients", str(args.clients), "--rounds", str(args.rounds),
        stdout=asyncio.subprocess.PIPE)
    try:
        return await _measure(mode, proc, args, payload, ours, bare, pkg)
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def _measure(mode: str, proc: asyncio.subprocess.Process, args: argparse.Namespace,
                   payload: bytes, ours: _Collector, bare: list,
                   pkg: sockjs.SessionManager) -> dict:
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    assert line.strip() == b"ready", line
    await asyncio.sleep(0.2)  # the last opens settle
    loop = asyncio.get_running_loop()
    period = 1.0 / args.hz
    text = None
    cpu0, wall0 = time.process_time(), loop.time()
    for k in range(args.rounds):
        frame = Frame(payload[:-4] + k.to_bytes(4, "big"))
        if mode == "bare-send_str":
            text = 'a["' + sockjs_text(frame) + '"]'
            for ws in list(bare):
                await ws.send_str(text)
        elif mode == "sockjs-direct":
            for conn in ours.conns:
                conn.send(frame)
        elif mode == "sockjs-queued":
            text = sockjs_text(frame)
            for conn in ours.conns:
                conn.send_text(text)
        else:
            pkg.broadcast(sockjs_text(frame))
        await asyncio.sleep(max(0.0, wall0 + (k + 1) * period - loop.time()))
    done = await asyncio.wait_for(proc.stdout.readline(), 60)
    cpu = time.process_time() - cpu0
    delivered = int(done.split()[1])
    await asyncio.wait_for(proc.wait(), 30)
    await asyncio.sleep(0.3)  # the closes settle
    expected = args.clients * args.rounds
    return {"clients": args.clients, "frames_expected": expected, "frames_delivered": delivered,
            "delivered_fraction": round(delivered / expected, 5),
            "server_cpu_s": round(cpu, 4),
            "us_per_frame": round(cpu / max(delivered, 1) * 1e6, 3)}


async def _client(url: str, clients: int, rounds: int) -> None:
    count = 0
    done = asyncio.Event()
    finished = 0
    timeout = aiohttp.ClientTimeout(total=None)
    connector = aiohttp.TCPConnector(limit=0)  # one connection per client, no pool cap
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        sockets = []
        for i in range(clients):
            sockets.append(await session.ws_connect(url.format(i=i), max_msg_size=0))

        async def read(ws: aiohttp.ClientWebSocketResponse) -> None:
            nonlocal count, finished
            got = 0
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT and msg.data.startswith("a"):
                    n = msg.data.count('"') // 2  # a queued batch carries several
                    got += n
                    count += n
                    if got >= rounds:
                        break
            finished += 1
            if finished == clients:
                done.set()

        readers = [asyncio.ensure_future(read(ws)) for ws in sockets]
        print("ready", flush=True)
        idle = 0
        last = -1
        while not done.is_set() and idle < 20:  # 2 s without progress: frames were dropped
            await asyncio.sleep(0.1)
            idle = idle + 1 if count == last else 0
            last = count
        print(f"done {count}", flush=True)
        for r in readers:
            r.cancel()
        for ws in sockets:
            await ws.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clients", type=int, default=500)
    p.add_argument("--rounds", type=int, default=100)
    p.add_argument("--hz", type=float, default=20.0)
    p.add_argument("--payload", type=int, default=200, help="msgpack bytes per frame")
    p.add_argument("--json", default="var/bench/sockjs.json")
    p.add_argument("--client", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.client:
        asyncio.run(_client(args.client, args.clients, args.rounds))
        return
    print(f"{args.clients} clients, {args.rounds} frames of {args.payload} B at {args.hz} Hz")
    results = asyncio.run(_server(args))
    for mode, r in results.items():
        print(f"{mode:18} ratio to bare send_str: {r['ratio_to_bare']}")
    report = {"bench": "sockjs", "time": time.time(), "args": vars(args), "results": results}
    path = Path(args.json)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2))
    print(f"report: {path}")


if __name__ == "__main__":
    main()
