"""`python -m loadtest.scenarios rolling-deploy [--small]`: a rolling deploy under load.

Two nodes on Redis and a lobby on PostgreSQL (`cluster.Cluster`, as `make run-cluster`);
bots play over the raw websocket (`python -m loadtest`); while they do, each node in turn
gets SIGTERM (it drains: its matches move to the other node, docs/scale-out.md
"Handoff"), exits, and is started again. Printed and written to reports/rolling-deploy.json:
matches started, finished, aborted (from the lobby's database), players moved and the gap
each saw between its last state frame on the old node and its first on the new one
(the bots' `move_gap`), results posted once each (one ResultReport per ended match, no
duplicates), input-to-ack over the whole run, the drain time of each node.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from cluster import DEFAULT_PG, DEFAULT_REDIS, Cluster, create_database, drop_database, migrate
from loadtest.procs import free_port

ROOT = Path(__file__).resolve().parent.parent


def sql(cluster: Cluster, query: str, params: tuple = ()) -> list[tuple]:
    with psycopg.connect(cluster.database_url, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.scenarios rolling-deploy")
    p.add_argument("--small", action="store_true", help="16 bots for 40 s")
    p.add_argument("--bots", type=int, default=None, help="default 100 (16 with --small)")
    p.add_argument("--duration", type=float, default=None, help="seconds (default 90; 40 small)")
    p.add_argument("--mode", default="sprint")
    p.add_argument("--report", type=Path, default=None)
    p.add_argument("--pg-url", default=os.environ.get("PG_URL", DEFAULT_PG))
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS))
    flags = list(sys.argv[2:] if argv is None else argv)
    args = p.parse_args(flags)
    bots = args.bots or (16 if args.small else 100)
    duration = args.duration or (40.0 if args.small else 90.0)
    report = args.report or ROOT / "reports" / f"rolling-deploy{'-small' if args.small else ''}.json"
    var = Path(tempfile.mkdtemp(prefix="rolling-deploy-"))
    db = f"arena_rolling_{os.getpid()}"
    env = {"MATCH_MODE": args.mode, "MATCH_SIZE": "4", "MATCH_MAX_WAIT": "2",
           "NODE_TIMEOUT": "5", "ARENA_HEARTBEAT_INTERVAL": "0.5", "SEAT_TOKEN_TTL": "60",
           "GUEST_ALLOWLIST": "127.0.0.1,::1", "REDIS_PREFIX": f"arena-rolling-{os.getpid()}:",
           "ARENA_DRAIN_GRACE": "3", "ARENA_RECONNECT_WINDOW": "10"}
    cluster = Cluster(db_name=db, lobby_port=free_port(), node_ports=[free_port(), free_port()],
                      redis_url=args.redis_url, pg_url=args.pg_url, var_dir=var, env=env,
                      matcher_interval=0.2, internal_port=free_port())
    # internal_port: the nodes' heartbeats, results and handoff calls go to a lobby
    # process of their own, so that the players' load on the lobby does not delay a move
    print(f"rolling-deploy: {bots} bots, {duration:g} s, mode {args.mode}; logs in {var}",
          file=sys.stderr)
    drop_database(args.pg_url, db)
    create_database(args.pg_url, db)
    deploys: list[dict] = []
    try:
        migrate(cluster.env, var / "migrate.log")
        cluster.start(timeout=90)
        t_start = time.time()
        lt_report = var / "loadtest.json"
        lt_argv = [sys.executable, "-m", "loadtest", "--lobby", cluster.lobby_url, "--bots", str(bots),
                "--ramp", str(min(10.0, duration / 6)), "--duration", str(duration),
                "--transport", "websocket", "--mode", args.mode, "--report", str(lt_report)]
        for url in cluster.node_urls.values():
            lt_argv += ["--node-metrics", f"{url}/metrics"]
        bots_proc = subprocess.Popen(lt_argv, cwd=ROOT)
        t0 = time.monotonic()
        for i, node_id in enumerate(cluster.nodes):
            time.sleep(max(0.0, t0 + duration * (i + 1) / 3 - time.monotonic()))
            proc = cluster.nodes[node_id]
            rooms = cluster.health(node_id).get("rooms")
            began = time.monotonic()
            proc.signal(signal.SIGTERM)
            code = proc.wait(60)
            drained = time.monotonic() - began
            log = (var / f"{node_id}.log").read_text(errors="replace")
            moved = log.count(" moved to ")
            cluster.start_node(node_id, timeout=60)
            deploys.append({"node": node_id, "rooms": rooms, "exit": code,
                            "drain_s": round(drained, 3), "rooms_moved_total": moved})
            print(f"deployed {node_id}: {rooms} rooms, drained in {drained:.2f} s, exit {code}",
                  file=sys.stderr)
        bots_proc.wait(duration + 180)
        time.sleep(3)  # the last results reach the lobby
        lt = json.loads(lt_report.read_text())
        s = lt["summary"]
        since = t_start - 1
        by_status = dict(sql(cluster, "SELECT status, COUNT(*) FROM matchmaking_match "
                                      "WHERE created_at >= to_timestamp(%s) GROUP BY status",
                             (since,)))
        reports = sql(cluster, "SELECT COUNT(*), COALESCE(SUM(duplicates), 0) FROM "
                               "ratings_resultreport r JOIN matchmaking_match m "
                               "ON m.match_id = r.match_id WHERE m.created_at >= to_timestamp(%s)",
                      (since,))[0]
        ended = by_status.get("finished", 0) + by_status.get("aborted", 0)
        aborted_reasons = dict(sql(cluster, "SELECT reason, COUNT(*) FROM matchmaking_match WHERE "
                                            "status = 'aborted' AND created_at >= to_timestamp(%s) "
                                            "GROUP BY reason", (since,)))
        out = {
            "scenario": "rolling-deploy", "bots": bots, "duration_s": duration, "mode": args.mode,
            "command": " ".join(["python -m loadtest.scenarios rolling-deploy", *flags]),
            "matches": {"started": sum(by_status.values()), "finished": by_status.get("finished", 0),
                        "aborted": by_status.get("aborted", 0), "active_at_end": by_status.get("active", 0),
                        "aborted_reasons": aborted_reasons},
            "results": {"reports": reports[0], "ended_matches": ended, "duplicates": int(reports[1]),
                        "posted_once": reports[0] == ended and int(reports[1]) == 0},
            "players_moved": s["counters"].get("moved", 0),
            "move_gap_ms": s["move_gap_ms"],
            "input_ack_ms": s["input_ack_ms"],
            "bot_errors": s["errors"], "closes": s["closes"],
            "deploys": deploys,
        }
        report.parent.mkdir(parents=True, exist_ok=True)
        report.write_text(json.dumps(out, indent=1))
        g = out["move_gap_ms"]
        print(f"\nrolling deploy: {bots} bots, {duration:g} s, both nodes restarted in turn\n"
              f"  matches started {out['matches']['started']}, finished {out['matches']['finished']}, "
              f"aborted {out['matches']['aborted']} {aborted_reasons or ''}, "
              f"active at end {out['matches']['active_at_end']}\n"
              f"  players moved {out['players_moved']}; gap old->new node ms: p50 {g['p50']}, "
              f"p99 {g['p99']}, max {g['max']} (n={g['count']})\n"
              f"  results: {reports[0]} reports for {ended} ended matches, duplicates "
              f"{int(reports[1])} (posted once: {out['results']['posted_once']})\n"
              f"  input->ack ms: p50 {s['input_ack_ms'].get('p50')}, p99 {s['input_ack_ms'].get('p99')}\n"
              f"  drains: " + ", ".join(f"{d['node']} {d['drain_s']} s ({d['rooms']} rooms)"
                                        for d in deploys) + f"\n  written to {report}")
        return 0 if out["results"]["posted_once"] else 1
    finally:
        cluster.stop()
        drop_database(args.pg_url, db)


if __name__ == "__main__":
    sys.exit(main())
