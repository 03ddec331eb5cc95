"""`python -m lobby.bench`: lobby throughput and matcher speed, on SQLite and PostgreSQL.

For each database it prints and records:
- the time to match 10,000 queued tickets: the in-memory grouping alone, and a whole
  matcher pass (one query, grouping, bulk writes, commit);
- requests per second for guest sign-in (POST /api/guest, a new guest each time), queue
  join (POST /api/queue, each by another guest) and ticket status (GET /api/queue, which
  also drives the matcher) from concurrent clients against gunicorn with several workers.

    python -m lobby.bench                       # both databases, defaults below
    python -m lobby.bench --databases sqlite --duration 3 --clients 8

Writes reports/lobby-bench.json. Each database runs in its own subprocess (Django reads
DATABASE_URL once); the PostgreSQL one uses the database named in --pg-url, created if
missing and flushed (it must not be a database you care about).
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
SQLITE_FILE = REPO / "var" / "bench-lobby.sqlite3"
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432/lobby_bench"


# --- one database, in a subprocess ---------------------------------------------------------

def prepare_database(url: str) -> None:
    if url.startswith("sqlite"):
        for suffix in ("", "-wal", "-shm"):
            Path(str(SQLITE_FILE) + suffix).unlink(missing_ok=True)
        return
    import psycopg

    base, name = url.rsplit("/", 1)
    with psycopg.connect(base + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def bench_matching(n: int) -> dict[str, Any]:
    from django.contrib.auth import get_user_model
    from django.utils import timezone

    from lobby import games
    from lobby.accounts.models import Profile
    from lobby.matchmaking.matcher import Waiting, form_groups
    from lobby.matchmaking.models import Node, Ticket
    from lobby.matchmaking.services import rules, run_pass, to_dt

    mode = games.default_mode()  # the registry's first mode (or MATCH_MODE)
    rng = random.Random(1)
    ratings = [rng.gauss(1200, 250) for _ in range(n)]
    waits = [rng.uniform(0, 12) for _ in range(n)]
    tickets = [Waiting(i, i, ratings[i], waits[i], mode) for i in range(n)]
    memory = []
    for _ in range(3):
        t0 = time.perf_counter()
        groups = form_groups(tickets, rules())
        memory.append(time.perf_counter() - t0)

    User = get_user_model()
    users = User.objects.bulk_create([User(username=f"bench-{i}") for i in range(n)],
                                     batch_size=1000)
    if users[0].pk is None:  # backends without RETURNING ids
        users = list(User.objects.filter(username__startswith="bench-").order_by("id"))
    Profile.objects.bulk_create([Profile(user=u, rating=ratings[i]) for i, u in enumerate(users)],
                                batch_size=1000)
    now = time.time()
    Ticket.objects.bulk_create(
        [Ticket(user=u, mode=mode, rating=ratings[i], created_at=to_dt(now - waits[i]))
         for i, u in enumerate(users)], batch_size=1000)
    Node.objects.create(node_id="bench", url="http://127.0.0.1:9", capacity=10**6,
                        last_seen=timezone.now(), modes=list(games.offered()))
    figures = run_pass(now, force=True)
    return {"mode": mode, "match_size": rules().size_of(mode), "tickets": n,
            "groups": len(groups), "in_memory_seconds": round(min(memory), 4),
            "db_pass_seconds": figures["seconds"], "matches": figures["matches"],
            "seats": figures["seats"], "bots": figures["bots"], "steps": figures["steps"]}


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def run_phase(name: str, clients: int, duration: float, work) -> dict[str, Any]:
    """`work(index, conn, deadline, latencies, errors)` in `clients` threads."""
    results: list[tuple[list[float], list[int]]] = [([], []) for _ in range(clients)]
    deadline = time.monotonic() + duration
    started = time.monotonic()
    threads = [threading.Thread(target=work, args=(i, deadline, *results[i])) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - started
    lat = [x for r in results for x in r[0]]
    errors = [x for r in results for x in r[1]]
    return {"phase": name, "requests": len(lat), "errors": len(errors),
            "error_statuses": sorted(set(errors)), "seconds": round(elapsed, 2),
            "rps": round(len(lat) / elapsed, 1), "p50_ms": round(percentile(lat, 0.5) * 1000, 1),
            "p99_ms": round(percentile(lat, 0.99) * 1000, 1)}


def bench_http(url: str, workers: int, threads: int, clients: int, duration: float
               ) -> list[dict[str, Any]]:
    from django.conf import settings

    from engine.auth import derive_node_key, sign_request
    from lobby import games
    from lobby.live import GunicornServer, call

    # development mode; the bench's guests all come from loopback (exempt from the limit)
    env = {"DATABASE_URL": url, "NODE_SECRET": settings.NODE_SECRET, "ARENA_ENV": "dev",
           "GUEST_ALLOWLIST": "127.0.0.1,::1"}
    log = REPO / "var" / "bench-gunicorn.log"
    guests: list[list[dict[str, str]]] = [[] for _ in range(clients)]
    phases = []
    with GunicornServer(workers=workers, threads=threads, env=env, log_path=log) as srv:
        def connect() -> http.client.HTTPConnection:
            return http.client.HTTPConnection("127.0.0.1", srv.port, timeout=60)

        def sign_in(i: int, deadline: float, lat: list, errors: list) -> None:
            conn = connect()
            _, body, cookies = call(conn, "GET", "/api/csrf", {})
            base = {"csrftoken": cookies["csrftoken"]}
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                status, _, new = call(conn, "POST", "/api/guest", dict(base))
                lat.append(time.perf_counter() - t0)
                if status == 200:
                    guests[i].append({**base, **new})
                else:
                    errors.append(status)

        def join(i: int, deadline: float, lat: list, errors: list) -> None:
            conn = connect()
            for cookies in guests[i]:
                if time.monotonic() >= deadline:
                    break
                t0 = time.perf_counter()
                status, _, _ = call(conn, "POST", "/api/queue", cookies)
                lat.append(time.perf_counter() - t0)
                if status != 200:
                    errors.append(status)

        def status(i: int, deadline: float, lat: list, errors: list) -> None:
            conn = connect()
            k = 0
            while time.monotonic() < deadline and guests[i]:
                cookies = guests[i][k % len(guests[i])]
                k += 1
                t0 = time.perf_counter()
                code, _, _ = call(conn, "GET", "/api/queue", cookies)
                lat.append(time.perf_counter() - t0)
                if code != 200:
                    errors.append(code)

        def beat() -> None:
            """A node with room for everyone that runs every offered mode (heartbeat)."""
            path = "/api/internal/nodes/heartbeat"
            body = json.dumps({"node_id": "bench", "url": "http://127.0.0.1:9",
                               "capacity": 10**6, "rooms": 0, "players": 0,
                               "draining": False, "modes": list(games.offered())}).encode()
            headers = sign_request(derive_node_key(settings.NODE_SECRET, "bench"),
                                   node_id="bench", method="POST", path=path, body=body,
                                   now=time.time())
            call(connect(), "POST", path, {}, raw=body, headers=headers)

        phases.append(run_phase("guest sign-in", clients, duration, sign_in))
        beat()  # a queue join is refused while no live node runs the mode
        phases.append(run_phase("queue join", clients, duration, join))
        beat()  # alive again for the status phase, whose polls run real matcher passes
        phases.append(run_phase("ticket status", clients, duration, status))
    return phases


def run_one(url: str, args: argparse.Namespace) -> dict[str, Any]:
    prepare_database(url)
    os.environ["DATABASE_URL"] = url
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
    os.environ.setdefault("ARENA_ENV", "dev")  # a bench: development secrets
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    call_command("migrate", verbosity=0)
    call_command("flush", interactive=False, verbosity=0)
    matching = bench_matching(args.tickets)
    call_command("flush", interactive=False, verbosity=0)
    connection.close()
    http_phases = bench_http(url, args.workers, args.threads, args.clients, args.duration)
    return {"database": connection.vendor, "url": url.split("@")[-1], "matching": matching,
            "http": http_phases}


# --- the parent: one subprocess per database -----------------------------------------------

def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m lobby.bench", description=__doc__.splitlines()[0])
    p.add_argument("--databases", default="sqlite,postgres", help="comma list: sqlite, postgres")
    p.add_argument("--pg-url", default=DEFAULT_PG, help="PostgreSQL database (flushed!)")
    p.add_argument("--workers", type=int, default=3, help="gunicorn worker processes")
    p.add_argument("--threads", type=int, default=2, help="threads per gunicorn worker")
    p.add_argument("--clients", type=int, default=16, help="concurrent client threads")
    p.add_argument("--duration", type=float, default=5.0, help="seconds per HTTP phase")
    p.add_argument("--tickets", type=int, default=10_000, help="tickets for the matcher figure")
    p.add_argument("--out", default=str(REPO / "reports" / "lobby-bench.json"))
    p.add_argument("--one", default=None, help=argparse.SUPPRESS)  # internal: run one database
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(run_one(args.one, args)))
        return

    urls = {"sqlite": f"sqlite:///{SQLITE_FILE}", "postgres": args.pg_url}
    report: dict[str, Any] = {
        "command": "python -m lobby.bench " + " ".join(argv if argv is not None else sys.argv[1:]),
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "load_average_before": [round(x, 2) for x in os.getloadavg()]},
        "settings": {"workers": args.workers, "threads": args.threads, "clients": args.clients,
                     "duration": args.duration, "tickets": args.tickets},
        "results": [],
    }
    for name in [d.strip() for d in args.databases.split(",") if d.strip()]:
        cmd = [sys.executable, "-m", "lobby.bench", "--one", urls[name],
               *[f"--{k}={getattr(args, k)}" for k in ("workers", "threads", "clients",
                                                         "duration", "tickets")]]
        print(f"== {name}: {urls[name].split('@')[-1]}", flush=True)
        proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=900)
        if proc.returncode != 0:
            print(proc.stderr[-2000:])
            report["results"].append({"database": name, "error": proc.stderr[-500:]})
            continue
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        report["results"].append(result)
        m = result["matching"]
        print(f"  match {m['tickets']} tickets: in memory {m['in_memory_seconds'] * 1000:.1f} ms, "
              f"whole pass {m['db_pass_seconds'] * 1000:.0f} ms "
              f"({m['matches']} matches, {m['bots']} bot seats)")
        for ph in result["http"]:
            print(f"  {ph['phase']:14} {ph['rps']:8.1f} req/s  p50 {ph['p50_ms']:6.1f} ms  "
                  f"p99 {ph['p99_ms']:6.1f} ms  ({ph['requests']} requests, "
                  f"{ph['errors']} errors)")
    report["machine"]["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    print(f"load average before {report['machine']['load_average_before'][0]}, "
          f"after {report['machine']['load_average_after'][0]} ({os.cpu_count()} cpus)")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"report: {out}")
    if any("error" in r for r in report["results"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
