"""`python -m lobby.sse_bench`: the live lobby's figures, SSE against polling in one run.

On one uvicorn lobby process (SQLite, the lifespan's background matcher, a fake node
registered by signed heartbeats):

1. matched-to-notified latency: pairs of guests queue for a 2-player mode at once (a pair
   every --gap seconds); the time from the match's creation (`Match.created_at`, the
   pass's clock, so the pass's own time is in it) to the moment the player learns it, (a) from its event stream, (b) polling GET /api/queue every
   0.5 s as the client's fallback does (at a random phase); p50/p99 over every player;
2. lobby CPU per waiting player per second: N tickets that keep waiting (the node is full),
   held (a) by N idle event streams, (b) by N pollers at 0.5 s; the lobby process's CPU
   time (/proc) over the same window, divided by N and the window;
3. concurrent idle streams one lobby process holds (target 5,000): streams opened in
   batches, then RSS and threads of the process; every stream must still get an event
   published after they are all open.

    python -m lobby.sse_bench                  # defaults below
    python -m lobby.sse_bench --pairs 20 --waiting 50 --streams 1000

Writes reports/lobby-sse-bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

REPO = Path(__file__).resolve().parent.parent
SEAT_SECRET = "sse-bench-seat-secret"
NODE_SECRET = "sse-bench-node-secret"
NODE_ID = "bench-node"
FULL = 10**6  # players the node reports to be full
POLL_S = 0.5  # the browser client's fallback interval (static/src/client.js)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def proc_status(pid: int) -> dict[str, int]:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "Threads"):
            out[key] = int(value.split()[0])
    return out


class Lobby:
    """The lobby process, a guest factory and the fake node's heartbeats."""

    def __init__(self, tmp: Path) -> None:
        from lobby.live import HeartbeatOnlyNode
        from lobby.realtime.server import UvicornServer

        self.db = tmp / "lobby.sqlite3"
        self.env = {"ARENA_ENV": "dev", "DATABASE_URL": f"sqlite:///{self.db}",
                    "DB_CONN_MAX_AGE": "0", "MATCH_MODES": "duel", "MATCH_SIZE": "2",
                    "MATCH_MAX_WAIT": "3600", "REDIS_URL": "", "MATCHER_TASK": "1",
                    "GUEST_ALLOWLIST": "127.0.0.1", "SEAT_SECRET": SEAT_SECRET,
                    "NODE_SECRET": NODE_SECRET, "SSE_HEARTBEAT": "15",
                    "SSE_MAX_STREAMS": "20000", "NODE_TIMEOUT": "60", "LOG_LEVEL": "WARNING"}
        subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                       cwd=REPO, env={**os.environ, **self.env}, check=True, timeout=300)
        self.server = UvicornServer(env=self.env, log_path=REPO / "var" / "sse-bench-lobby.log")
        self.node = HeartbeatOnlyNode(self.server.url, NODE_SECRET, NODE_ID, ["duel"])

    def start(self) -> None:
        self.server.start()
        self.node.start()

    def created_at(self, match_ids: list[str]) -> dict[str, float]:
        from datetime import UTC, datetime

        with sqlite3.connect(self.db, timeout=20) as conn:
            rows = conn.execute(
                f"SELECT match_id, created_at FROM matchmaking_match WHERE match_id IN "
                f"({','.join('?' * len(match_ids))})", match_ids).fetchall()
        return {m: datetime.fromisoformat(c).replace(tzinfo=UTC).timestamp() for m, c in rows}

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def stop(self) -> None:
        self.node.stop()
        self.server.stop()


class Guest:
    """One browser: a cookie jar on an aiohttp session."""

    def __init__(self, url: str, http: aiohttp.ClientSession) -> None:
        self.url, self.http = url, http
        self.cookies: dict[str, str] = {}

    def _headers(self) -> dict[str, str]:
        return {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items()),
                "X-CSRFToken": self.cookies.get("csrftoken", ""),
                "Content-Type": "application/json"}

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.url + path, headers=self._headers(),
                                     data=None if body is None else json.dumps(body)) as resp:
            for name, morsel in resp.cookies.items():
                self.cookies[name] = morsel.value
            return resp.status, await resp.json(content_type=None)

    async def sign_in(self) -> Guest:
        await self.call("GET", "/api/csrf")
        status, body = await self.call("POST", "/api/guest")
        if status != 200:
            raise RuntimeError(f"guest: {status} {body}")
        return self

    async def join(self) -> None:
        status, body = await self.call("POST", "/api/queue", {"mode": "duel"})
        if status != 200:
            raise RuntimeError(f"join: {status} {body}")


async def guests(url: str, http: aiohttp.ClientSession, n: int) -> list[Guest]:
    out: list[Guest] = []
    for i in range(0, n, 20):
        out += await asyncio.gather(*(Guest(url, http).sign_in() for _ in range(min(20, n - i))))
    return out


async def open_stream(g: Guest):
    from lobby.realtime.server import EventStream

    stream = await EventStream.open(g.url, g.cookies, http=g.http)
    await stream.until("state", timeout=60)
    return stream


# --- 1. latency ---------------------------------------------------------------------------

async def latency(lobby: Lobby, http: aiohttp.ClientSession, pairs: int, rounds: int,
                  gap: float) -> dict[str, Any]:
    url = lobby.server.url
    seen: dict[str, list[tuple[str, float]]] = {"sse": [], "poll": []}

    async def by_stream(g: Guest, stream) -> None:
        msg = await stream.until("matched", timeout=30)
        seen["sse"].append((msg.data["match_id"], time.time()))
        await stream.close()

    async def by_poll(g: Guest) -> None:
        # the poll's phase is uniformly random against the moment the match forms, as for
        # a player who has waited a while (right after a join the first poll comes too early
        # and the wait would be a whole interval)
        await asyncio.sleep(random.uniform(0, POLL_S))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            status, body = await g.call("GET", "/api/queue")
            if status == 200 and body.get("status") == "matched":
                seen["poll"].append((body["match_id"], time.time()))
                return
            await asyncio.sleep(POLL_S)
        raise RuntimeError("a polling player was never matched")

    for _ in range(rounds):
        for kind in ("sse", "poll"):
            players = await guests(url, http, 2 * pairs)
            if kind == "sse":
                streams = await asyncio.gather(*(open_stream(g) for g in players))
                waits = [asyncio.create_task(by_stream(g, s))
                         for g, s in zip(players, streams, strict=True)]
            else:
                waits = []
            # pairs join together; a poller starts polling at a random phase, as it would
            for a, b in zip(players[::2], players[1::2], strict=True):
                await asyncio.gather(a.join(), b.join())
                if kind == "poll":
                    waits += [asyncio.create_task(by_poll(a)), asyncio.create_task(by_poll(b))]
                await asyncio.sleep(gap)
            await asyncio.gather(*waits)
    out: dict[str, Any] = {}
    for kind, rows in seen.items():
        created = lobby.created_at(sorted({m for m, _ in rows}))
        ms = [(t - created[m]) * 1000 for m, t in rows]
        out[kind] = {"players": len(ms), "p50_ms": round(percentile(ms, 50), 1),
                     "p99_ms": round(percentile(ms, 99), 1),
                     "mean_ms": round(statistics.fmean(ms), 1)}
    return out


# --- 2. CPU per waiting player ------------------------------------------------------------

async def cpu_per_waiting(lobby: Lobby, http: aiohttp.ClientSession, n: int, window: float
                          ) -> dict[str, Any]:
    url = lobby.server.url
    lobby.node.players = FULL  # tickets keep waiting: the only node is full
    await asyncio.to_thread(lobby.node.heartbeat)
    out: dict[str, Any] = {"waiting": n, "window_s": window}
    for kind in ("sse", "poll", "idle"):
        players = await guests(url, http, n) if kind != "idle" else []
        for g in players:
            await g.join()
        stop = asyncio.Event()
        streams: list = []
        tasks = []
        if kind == "sse":
            streams = await asyncio.gather(*(open_stream(g) for g in players))
        elif kind == "poll":
            async def poll(g: Guest, stop: asyncio.Event = stop) -> int:
                count = 0
                await asyncio.sleep(POLL_S * (hash(id(g)) % 100) / 100)
                while not stop.is_set():
                    await g.call("GET", "/api/queue")
                    count += 1
                    await asyncio.sleep(POLL_S)
                return count
            tasks = [asyncio.create_task(poll(g)) for g in players]
        await asyncio.sleep(2)  # settle
        before, t0 = cpu_seconds(lobby.pid), time.monotonic()
        await asyncio.sleep(window)
        used, elapsed = cpu_seconds(lobby.pid) - before, time.monotonic() - t0
        stop.set()
        polls = sum(await asyncio.gather(*tasks)) if tasks else 0
        for s in streams:
            await s.close()
        for g in players:  # leave the queue for the next phase
            await g.call("DELETE", "/api/queue")
        out[kind] = {"cpu_s": round(used, 3), "cpu_percent": round(100 * used / elapsed, 1)}
        if players:
            out[kind]["cpu_ms_per_player_second"] = round(1000 * used / (n * elapsed), 4)
        if polls:
            out[kind]["requests"] = polls
    lobby.node.players = 0
    await asyncio.to_thread(lobby.node.heartbeat)
    # what the holding costs above the idle lobby (its matcher ticks and heartbeats)
    for kind in ("sse", "poll"):
        extra = out[kind]["cpu_s"] - out["idle"]["cpu_s"]
        out[kind]["cpu_ms_per_player_second_above_idle"] = round(1000 * extra / (n * window), 4)
    return out


# --- 3. idle streams ----------------------------------------------------------------------

async def idle_streams(lobby: Lobby, n: int, per_guest: int) -> dict[str, Any]:
    from lobby.realtime.server import EventStream

    url = lobby.server.url
    conn = aiohttp.TCPConnector(limit=0, force_close=False)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=None)) as http:
        people = await guests(url, http, max(1, n // per_guest))
        await asyncio.sleep(1)
        base = proc_status(lobby.pid)
        t0 = time.monotonic()
        streams: list[EventStream] = []
        for i in range(0, n, 250):
            batch = [people[(i + j) % len(people)] for j in range(min(250, n - i))]
            streams += await asyncio.gather(*(EventStream.open(url, g.cookies, http=http)
                                              for g in batch))
            await asyncio.gather(*(s.until("state", timeout=120) for s in streams[i:]))
        opened = time.monotonic() - t0
        await asyncio.sleep(2)
        held = proc_status(lobby.pid)
        # all still alive: one event to every guest's channel reaches every stream
        lobby.node.players = FULL
        await asyncio.to_thread(lobby.node.heartbeat)
        for g in people:
            await g.call("POST", "/api/queue", {"mode": "duel"})
        got = await asyncio.gather(*(s.until("queue", timeout=60) for s in streams),
                                   return_exceptions=True)
        delivered = sum(1 for r in got if not isinstance(r, BaseException))
        for s in streams:
            s.resp.close()
        for g in people:
            await g.call("DELETE", "/api/queue")
    lobby.node.players = 0
    rss_kib = held["VmRSS"] - base["VmRSS"]
    return {"streams": n, "guests": len(people), "open_s": round(opened, 1),
            "delivered_after_open": delivered, "rss_before_mib": round(base["VmRSS"] / 1024, 1),
            "rss_held_mib": round(held["VmRSS"] / 1024, 1),
            "rss_per_stream_kib": round(rss_kib / n, 1),
            "threads_before": base["Threads"], "threads_held": held["Threads"]}


async def run(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="sse-bench-") as tmp:
        lobby = Lobby(Path(tmp))
        lobby.start()
        try:
            async with aiohttp.ClientSession(
                    connector=aiohttp.TCPConnector(limit=0),
                    timeout=aiohttp.ClientTimeout(total=None)) as http:
                print("latency: matched -> notified ...", flush=True)
                lat = await latency(lobby, http, args.pairs, args.rounds, args.gap)
                print(json.dumps(lat), flush=True)
                print("CPU per waiting player ...", flush=True)
                cpu = await cpu_per_waiting(lobby, http, args.waiting, args.window)
                print(json.dumps(cpu), flush=True)
            print(f"{args.streams} idle streams ...", flush=True)
            streams = await idle_streams(lobby, args.streams, args.per_guest)
            print(json.dumps(streams), flush=True)
        finally:
            lobby.stop()
    return {"latency": lat, "cpu": cpu, "idle_streams": streams}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lobby.sse_bench", description=__doc__.splitlines()[0])
    p.add_argument("--pairs", type=int, default=25, help="pairs of players per round and kind")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--gap", type=float, default=0.1, help="seconds between two pairs' joins")
    p.add_argument("--waiting", type=int, default=100, help="waiting players in the CPU phase")
    p.add_argument("--window", type=float, default=10.0, help="seconds of CPU measured")
    p.add_argument("--streams", type=int, default=5000)
    p.add_argument("--per-guest", type=int, default=50, help="streams per signed-in guest")
    p.add_argument("--out", default=str(REPO / "reports" / "lobby-sse-bench.json"))
    args = p.parse_args(argv)
    os.environ.setdefault("ARENA_ENV", "dev")
    started, load_before = time.time(), os.getloadavg()[0]
    figures = asyncio.run(run(args))
    report = {"measured": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
              "command": " ".join(["python -m lobby.sse_bench", *(argv or sys.argv[1:])]),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "load_before": load_before},
              **figures}
    report["machine"]["load_after"] = os.getloadavg()[0]
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
