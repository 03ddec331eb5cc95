"""`python -m lobby.shared.bench`: the cost of each shared-state operation, database
default against Redis, in one process (what one lobby request pays).

    python -m lobby.shared.bench [--redis-url redis://127.0.0.1:6379/0] [--n 2000]

Uses its own SQLite file (var/bench-shared.sqlite3, recreated) unless DATABASE_URL is set,
and Redis keys under `bench:<pid>:` (deleted afterwards). Prints a table and writes
reports/shared-state-bench.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent.parent
SQLITE_FILE = REPO / "var" / "bench-shared.sqlite3"


def per_op(fn: Callable[[int], Any], n: int) -> float:
    """Microseconds per call of fn(i), i in range(n)."""
    started = time.perf_counter()
    for i in range(n):
        fn(i)
    return round((time.perf_counter() - started) / n * 1e6, 1)


def bench_backend(shared, n: int) -> dict[str, float]:
    from lobby.shared.nodes import NodeInfo

    now = time.time()
    figures: dict[str, float] = {}
    figures["nonce_claim_us"] = per_op(lambda i: shared.nonces.claim("bench", f"n{i}", now), n)
    figures["login_blocked_us"] = per_op(lambda i: shared.logins.blocked([f"u:{i}", "ip:x"], now), n)
    figures["login_failure_us"] = per_op(lambda i: shared.logins.record_failure([f"u:{i}"], now), n // 4)
    figures["gate_due_us"] = per_op(lambda i: shared.gate.due(now), n)

    def beat(i: int) -> None:
        shared.nodes.heartbeat(NodeInfo(f"node-{i % 4}", "http://127.0.0.1:9", 10**6, 0, 0,
                                        0, False, time.time()))

    figures["heartbeat_us"] = per_op(beat, n // 4)
    figures["alive_4_nodes_us"] = per_op(lambda i: shared.nodes.alive(time.time()), n // 4)
    figures["reserve_1_match_us"] = per_op(lambda i: shared.nodes.reserve([4], time.time()), n // 4)
    started = time.perf_counter()
    placed = shared.nodes.reserve([4] * 2500, time.time())
    figures["reserve_2500_matches_ms"] = round((time.perf_counter() - started) * 1000, 2)
    assert all(placed), "bench nodes are large enough for every match"
    return figures


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL") or "redis://127.0.0.1:6379/0")
    p.add_argument("--n", type=int, default=2000, help="calls per operation")
    p.add_argument("--report", default=str(REPO / "reports" / "shared-state-bench.json"))
    args = p.parse_args(argv)

    if "DATABASE_URL" not in os.environ:
        for suffix in ("", "-wal", "-shm"):
            Path(str(SQLITE_FILE) + suffix).unlink(missing_ok=True)
        os.environ["DATABASE_URL"] = f"sqlite:///{SQLITE_FILE}"
    os.environ["REDIS_URL"] = ""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
    os.environ.setdefault("ARENA_ENV", "dev")  # a bench: development secrets
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from lobby.shared import build

    call_command("migrate", verbosity=0)
    prefix = f"bench:{os.getpid()}:"
    results: dict[str, Any] = {}
    results["database"] = bench_backend(build("", prefix), args.n)
    redis_state = build(args.redis_url, prefix)
    try:
        results["redis"] = bench_backend(redis_state, args.n)
    finally:
        keys = list(redis_state.redis.scan_iter(match=prefix + "*", count=1000))
        if keys:
            redis_state.redis.delete(*keys)
    report = {"database": settings.DATABASES["default"]["ENGINE"].rsplit(".", 1)[-1],
              "redis_url": args.redis_url, "n": args.n, "python": platform.python_version(),
              "machine": platform.machine(), "cpus": os.cpu_count(), "results": results}
    names = list(results["database"])
    print(f"{'operation':28} {'database':>10} {'redis':>10}")
    for name in names:
        print(f"{name:28} {results['database'][name]:>10} {results['redis'][name]:>10}")
    Path(args.report).parent.mkdir(exist_ok=True)
    Path(args.report).write_text(json.dumps(report, indent=2) + "\n")
    print(f"report: {args.report}", file=sys.stderr)


if __name__ == "__main__":
    main()
