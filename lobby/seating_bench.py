"""`python -m lobby.seating_bench`: the lobby's CPU per request of a load-test bot's seating
(GET /api/csrf, POST /api/guest, POST /api/queue, then the wait: GET /api/queue polls or
one GET /api/events stream), on the c1k scenario's lobby (`loadtest.scenarios`: SQLite,
`MATCH_SIZE=16`, `MATCH_MAX_WAIT=5`, DEBUG off), served either way:

- `gunicorn`: `lobby.wsgi`, 2 workers x 4 threads; GET /api/queue runs the matcher passes;
- `uvicorn`: `lobby.asgi`, one process, the lifespan's background matcher (as deployed).

A fake node registered by signed heartbeats takes every match. Each phase sends its
request once per bot (`--polls` times for GET /api/queue), `--concurrency` at a time; the
figure is the lobby's CPU time over the phase (/proc: the server process and its workers)
divided by the requests, so a matcher pass is counted in the phase whose requests cause it
(the polls on gunicorn, the joins on uvicorn). `--roots` serves another checkout's lobby
(e.g. a worktree of an older commit) with the same client, in alternating rounds:

    python -m lobby.seating_bench                              # both servers, 400 bots
    python -m lobby.seating_bench --servers gunicorn --roots /tmp/base,. --rounds 3

Writes reports/lobby-seating-bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
NODE_ID = "bench-node"
# the lobby environment of loadtest.scenarios' c1k (its _BASE_LOBBY and stack())
SCENARIO_ENV = {"MATCH_SIZE": "16", "MATCH_MAX_WAIT": "5", "DEBUG": "0", "LOG_LEVEL": "WARNING",
                "ALLOWED_HOSTS": "127.0.0.1,localhost", "GUEST_ALLOWLIST": "127.0.0.1,::1",
                "ARENA_ENV": "dev", "REDIS_URL": "", "PYTHONUNBUFFERED": "1"}


def process_tree_cpu(pid: int) -> float:
    """CPU seconds of `pid` and its live children (gunicorn's workers), user + system."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(c) for c in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


class Lobby:
    """The lobby as c1k runs it, from `root`, on a fresh SQLite file."""

    def __init__(self, server: str, root: Path, tmp: Path) -> None:
        from engine.registry import registry
        from lobby.live import GunicornServer, HeartbeatOnlyNode
        from lobby.realtime.server import UvicornServer

        self.node_secret = secrets.token_hex(16)
        env = {**SCENARIO_ENV, "DATABASE_URL": f"sqlite:///{tmp / 'lobby.sqlite3'}",
               "SEAT_SECRET": secrets.token_hex(16), "NODE_SECRET": self.node_secret}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=root, env={**os.environ, **env}, check=True, timeout=300)
        log = tmp / f"{server}.log"
        if server == "gunicorn":
            self.server = GunicornServer(workers=2, threads=4, env=env, log_path=log, cwd=root)
        else:
            self.server = UvicornServer(env=env, log_path=log, cwd=root)
        self.node = HeartbeatOnlyNode(self.server.url, self.node_secret, NODE_ID,
                                      list(registry().modes))

    def start(self) -> None:
        self.server.start()
        self.node.start()

    @property
    def pid(self) -> int:
        assert self.server.proc is not None
        return self.server.proc.pid

    def stop(self) -> None:
        self.node.stop()
        self.server.stop()


class Bot:
    """One bot's cookie jar (the guest's session and CSRF cookie)."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http
        self.cookies: dict[str, str] = {}

    def headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                "X-CSRFToken": self.cookies.get("csrftoken", ""),
                "Content-Type": "application/json"}

    async def call(self, method: str, path: str, body: Any = None) -> dict:
        async with self.http.request(method, self.url + path, headers=self.headers(),
                                     data=None if body is None else json.dumps(body)) as resp:
            for name, morsel in resp.cookies.items():
                self.cookies[name] = morsel.value
            data = await resp.json(content_type=None)
            if resp.status != 200:
                raise RuntimeError(f"{method} {path}: {resp.status} {data}")
            return data

    async def first_event(self) -> str:
        """GET /api/events until its first event (`state`): the event's status."""
        from lobby.realtime.server import EventStream

        stream = await EventStream.open(self.url, self.cookies, http=self.http)
        try:
            msg = await stream.until("state", timeout=60)
        finally:
            await stream.close()
        return str(msg.data.get("status"))


async def phase(lobby: Lobby, bots: list[Bot], concurrency: int, name: str, step) -> dict:
    gate = asyncio.Semaphore(concurrency)
    latencies: list[float] = []

    async def one(bot: Bot) -> None:
        async with gate:
            t0 = time.perf_counter()
            await step(bot)
            latencies.append(time.perf_counter() - t0)

    cpu0, t0 = process_tree_cpu(lobby.pid), time.perf_counter()
    await asyncio.gather(*(one(b) for b in bots))
    cpu, wall = process_tree_cpu(lobby.pid) - cpu0, time.perf_counter() - t0
    n = len(latencies)
    return {"phase": name, "requests": n, "seconds": round(wall, 2),
            "cpu_ms_per_request": round(cpu * 1000 / n, 3),
            "p50_ms": round(statistics.median(latencies) * 1000, 1)}


async def run_one(server: str, root: Path, bots: int, concurrency: int, polls: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="seating-bench-") as tmp:
        lobby = Lobby(server, root, Path(tmp))
        await asyncio.to_thread(lobby.start)
        try:
            async with aiohttp.ClientSession(
                    timeout=aiohttp.ClientTimeout(total=120),
                    connector=aiohttp.TCPConnector(limit=concurrency)) as http:
                fleet = [Bot(lobby.server.url, http) for _ in range(bots)]
                phases = [
                    await phase(lobby, fleet, concurrency, "GET /api/csrf",
                                lambda b: b.call("GET", "/api/csrf")),
                    await phase(lobby, fleet, concurrency, "POST /api/guest",
                                lambda b: b.call("POST", "/api/guest")),
                    await phase(lobby, fleet, concurrency, "POST /api/queue",
                                lambda b: b.call("POST", "/api/queue", {})),
                ]
                await asyncio.sleep(1.0)  # the background matcher's last passes
                polled = await phase(lobby, fleet * polls, concurrency, "GET /api/queue",
                                     lambda b: b.call("GET", "/api/queue"))
                phases.append(polled)
                if server == "uvicorn":
                    phases.append(await phase(lobby, fleet, concurrency, "GET /api/events",
                                              lambda b: b.first_event()))
        finally:
            await asyncio.to_thread(lobby.stop)
    return {"server": server, "root": str(root), "phases": phases}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lobby.seating_bench",
                                description=__doc__.splitlines()[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--servers", default="gunicorn,uvicorn", help="comma list: gunicorn, uvicorn")
    p.add_argument("--roots", default=str(REPO),
                   help="comma list of checkouts whose lobby is served (default this one)")
    p.add_argument("--rounds", type=int, default=1, help="alternating rounds over --roots")
    p.add_argument("--bots", type=int, default=400)
    p.add_argument("--concurrency", type=int, default=16, help="requests in flight")
    p.add_argument("--polls", type=int, default=2, help="GET /api/queue per bot")
    p.add_argument("--out", default=str(REPO / "reports" / "lobby-seating-bench.json"))
    args = p.parse_args(argv)
    roots = [Path(r).resolve() for r in args.roots.split(",") if r]
    servers = [s.strip() for s in args.servers.split(",") if s.strip()]
    report: dict[str, Any] = {
        "command": "python -m lobby.seating_bench " + " ".join(sys.argv[1:] if argv is None else argv),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "runs": []}
    for rnd in range(args.rounds):
        for server in servers:
            for root in roots:
                run = asyncio.run(run_one(server, root, args.bots, args.concurrency, args.polls))
                run["round"] = rnd
                report["runs"].append(run)
                print(f"round {rnd} {server} {root} (load {os.getloadavg()[0]:.2f})", flush=True)
                for ph in run["phases"]:
                    print(f"  {ph['phase']:16} {ph['cpu_ms_per_request']:7.2f} ms CPU/request  "
                          f"p50 {ph['p50_ms']:6.1f} ms  ({ph['requests']} in {ph['seconds']} s)",
                          flush=True)
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"load average before {report['machine']['load_average_before']}, after "
          f"{report['machine']['load_average_after']}; report: {out}")


if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
    os.environ.setdefault("ARENA_ENV", "dev")
    main()
