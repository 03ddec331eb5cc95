"""`make run-cluster`: the scaled-out setup on this machine's PostgreSQL and Redis.

    python cluster.py [--lobby-port 8000] [--node-ports 8001,8002] [--db arena_cluster]
                      [--redis-url redis://127.0.0.1:6379/1] [--workers 2] [--threads 4]
                      [--internal-port 8010]
                      [--loadtest "--bots 400 --ramp 20 --duration 30 ..."]

Starts, as child processes: the lobby under uvicorn (2 ASGI workers; event streams
cross them through Redis) on PostgreSQL (the database is created if missing, then
migrated), the matcher loop (`manage.py run_matcher`, which also publishes the matched
and queue events), the replay verifier (`manage.py verify_replays --loop`), and one game node per port (`node-1`, `node-2`, ...), each with its own
public URL, all with `REDIS_URL` set so that shared state lives in Redis. Prints the URL
to open; Ctrl-C (or SIGTERM) stops the nodes first (their results reach the lobby), then
the matcher and the lobby. If a child dies, the others are stopped too. Logs and the
nodes' outboxes are in `--var-dir` (var/cluster).

With `--loadtest FLAGS` it runs `python -m loadtest --lobby <lobby> FLAGS` against the
cluster instead of waiting for Ctrl-C (every node's /metrics scraped, nodes and lobby
watched in /proc), then stops everything: the scaling figures of docs/deploy.md.

`Cluster` is the same thing as an object, used by the fault tests (tests/scale/): each
process can be stopped, killed and started again on the same port.

Environment: `PG_URL` (server, default postgres://postgres@127.0.0.1:5432), `REDIS_URL`,
`SECRET_KEY`, `SEAT_SECRET`, `NODE_SECRET` (each one unset is generated once and kept in
`<var-dir>/secrets.json`), and any lobby or node setting (`NODE_TIMEOUT`, `MATCH_*`,
`ARENA_*`) is passed through. The cluster runs in production mode (no `ARENA_ENV=dev`,
`DEBUG=0`): the lobby gets the master `NODE_SECRET`, each node only its own `NODE_KEY`.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit

from engine.auth import derive_node_key

REPO = Path(__file__).resolve().parent
SECRETS = ("SECRET_KEY", "SEAT_SECRET", "NODE_SECRET")
DEFAULT_PG = "postgres://postgres@127.0.0.1:5432"
DEFAULT_REDIS = "redis://127.0.0.1:6379/1"


def http_get(url: str, path: str, timeout: float = 2.0) -> tuple[int, dict | str]:
    """GET url+path; (status, JSON or text). Raises OSError when nothing answers."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.headers.get("Content-Type", "").startswith("application/json"):
            return resp.status, json.loads(body)
        return resp.status, body.decode(errors="replace")
    except http.client.HTTPException as exc:
        raise OSError(str(exc)) from exc
    finally:
        conn.close()


def _admin_connection(pg_url: str):
    import psycopg  # noqa: PLC0415 - only the PostgreSQL parts need it

    return psycopg.connect(pg_url.rstrip("/") + "/postgres", autocommit=True, connect_timeout=5)


def create_database(pg_url: str, name: str, template: str | None = None) -> bool:
    """CREATE DATABASE name (from template) unless it exists. True if it was created."""
    from psycopg import sql  # noqa: PLC0415

    with _admin_connection(pg_url) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
            return False
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            query = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template))
        conn.execute(query)
        return True


def drop_database(pg_url: str, name: str) -> None:
    """DROP DATABASE name, closing its remaining connections."""
    from psycopg import sql  # noqa: PLC0415

    with _admin_connection(pg_url) as conn:
        conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                     "WHERE datname = %s AND pid <> pg_backend_pid()", (name,))
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


class Proc:
    """One child process: started in its own session (so that a Ctrl-C on the terminal
    does not reach it before the cluster decides the order), logged to a file."""

    def __init__(self, name: str, argv: list[str], env: Mapping[str, str], log_path: Path,
                 ready_url: str = "", ready_path: str = "",
                 ready_expect: Mapping[str, object] | None = None) -> None:
        self.name, self.argv, self.env, self.log_path = name, argv, dict(env), log_path
        self.ready_url, self.ready_path = ready_url, ready_path
        self.ready_expect = dict(ready_expect or {})  # fields the ready answer must hold
        self.popen: subprocess.Popen | None = None
        self.terminating = False  # SIGTERM sent: a second one would cut a node's flush short

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def start(self) -> Proc:
        self.terminating = False
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it
        try:
            self.popen = subprocess.Popen(self.argv, cwd=REPO, env=self.env, stdout=log,
                                          stderr=subprocess.STDOUT, start_new_session=True)
        finally:
            log.close()
        return self

    def wait_ready(self, timeout: float) -> None:
        """Until ready_url+ready_path answers 200 with the `ready_expect` fields (a node's
        /health names its node id: not another process on that port), or at once with no
        ready_url."""
        deadline = time.monotonic() + timeout
        while self.ready_url:
            if not self.running:
                raise RuntimeError(f"{self.name} exited with {self.popen.returncode}; "
                                   f"see {self.log_path}")
            try:
                status, body = http_get(self.ready_url, self.ready_path)
                if status == 200 and all(isinstance(body, dict) and body.get(k) == v
                                         for k, v in self.ready_expect.items()):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not answer in {timeout} s; "
                                   f"see {self.log_path}")
            time.sleep(0.2)

    def signal(self, sig: int) -> None:
        if self.running:
            self.popen.send_signal(sig)
            if sig == signal.SIGTERM:
                self.terminating = True

    def wait(self, timeout: float) -> int | None:
        """Exit code, or None if still running after timeout."""
        if self.popen is None:
            return None
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, timeout: float = 15.0) -> int | None:
        """SIGTERM (once: aiohttp and gunicorn read a second one as "hurry"), then SIGKILL
        after timeout. The exit code."""
        if not self.running:
            return self.popen.returncode if self.popen else None
        if not self.terminating:
            self.signal(signal.SIGTERM)
        code = self.wait(timeout)
        if code is None:
            self.kill()
            code = self.popen.returncode
        return code

    def kill(self) -> None:
        """SIGKILL, no goodbye (the fault tests' crashed node)."""
        if self.running:
            self.popen.kill()
            self.popen.wait(10)


def cluster_secrets(var_dir: Path, env: Mapping[str, str]) -> dict[str, str]:
    """SECRET_KEY, SEAT_SECRET, NODE_SECRET from `env`; each one missing is generated once
    into `<var_dir>/secrets.json` (mode 0600) and read from there on later runs."""
    path = var_dir / "secrets.json"
    stored = json.loads(path.read_text()) if path.exists() else {}
    if any(not env.get(k) and k not in stored for k in SECRETS):
        stored.update({k: secrets.token_urlsafe(50) for k in SECRETS if k not in stored})
        path.touch(mode=0o600)
        path.write_text(json.dumps(stored, indent=1))
    return {k: env.get(k) or stored[k] for k in SECRETS}


class Cluster:
    """Lobby (uvicorn, PostgreSQL), matcher loop and game nodes on 127.0.0.1."""

    def __init__(self, *, db_name: str, lobby_port: int, node_ports: list[int],
                 redis_url: str = DEFAULT_REDIS, pg_url: str = DEFAULT_PG, workers: int = 2,
                 threads: int = 4, internal_port: int = 0,
                 host: str = "127.0.0.1", var_dir: Path = REPO / "var" / "cluster",
                 env: Mapping[str, str] | None = None,
                 node_env: Mapping[str, Mapping[str, str]] | None = None,
                 matcher_interval: float = 0.5) -> None:
        """`env` goes to every process; `node_env` (node id -> variables) to one node.
        `internal_port`: the nodes talk to a gunicorn of their own there (1 worker), so
        that player load on the lobby never delays their heartbeats."""
        self.db_name, self.pg_url, self.redis_url = db_name, pg_url.rstrip("/"), redis_url
        self.database_url = f"{self.pg_url}/{db_name}"
        self.host = host
        self.lobby_url = f"http://{host}:{lobby_port}"
        self.var_dir = Path(var_dir)
        self.var_dir.mkdir(parents=True, exist_ok=True)
        # STATIC_ROOT: whitenoise warns at every start when it is missing
        (REPO / "var" / "static").mkdir(parents=True, exist_ok=True)
        # production mode: not development (the tests' ARENA_ENV and settings module)
        inherited = {k: v for k, v in os.environ.items()
                     if k not in ("ARENA_ENV", "DJANGO_SETTINGS_MODULE")}
        base = {**inherited, "PYTHONUNBUFFERED": "1",
                "DEBUG": "0", "ALLOWED_HOSTS": os.environ.get("ALLOWED_HOSTS", "*"),
                **(env or {}),
                "DATABASE_URL": self.database_url, "REDIS_URL": redis_url}
        base.update(cluster_secrets(self.var_dir, base))
        self.env = base
        py = sys.executable
        # the players' lobby on uvicorn workers (ASGI: event streams, no thread per
        # waiting player); the matcher loop runs the passes, requests run none
        self.lobby = Proc(
            "lobby", [py, "-m", "uvicorn", "lobby.asgi:application", "--host", host,
                      "--port", str(lobby_port), "--workers", str(workers), "--lifespan", "on",
                      "--no-access-log", "--timeout-graceful-shutdown", "3",
                      "--backlog", "4096", "--log-level", "warning"],
            {"MATCHER_IN_REQUESTS": "0", **base}, self.var_dir / "lobby.log", self.lobby_url,
            "/api/csrf")
        self.lobby_procs = [self.lobby]
        internal_url = self.lobby_url
        if internal_port:
            internal_url = f"http://{host}:{internal_port}"
            self.lobby_procs.append(Proc(
                "lobby-internal", [py, "-m", "gunicorn", "lobby.wsgi", "-w", "1", "--threads",
                                   str(threads), "-b", f"{host}:{internal_port}",
                                   "--timeout", "60", "--graceful-timeout", "5",
                                   "--log-level", "warning"],
                base, self.var_dir / "lobby-internal.log", internal_url, "/api/csrf"))
        self.matcher = Proc(
            "matcher", [py, "manage.py", "run_matcher", "--interval", str(matcher_interval)],
            base, self.var_dir / "matcher.log")
        # results re-derived from their replays (lobby.replays; the lifespan's verifier is
        # off with REDIS_URL): ratings are applied once verified
        self.verifier = Proc(
            "verifier", [py, "manage.py", "verify_replays", "--loop", "--interval", "1",
                         "--purge"], base, self.var_dir / "verifier.log")
        self.nodes: dict[str, Proc] = {}
        self.node_urls: dict[str, str] = {}
        # a node holds its own key only: not the master, not the lobby's Django key
        node_base = {k: v for k, v in base.items() if k not in ("NODE_SECRET", "SECRET_KEY")}
        for i, port in enumerate(node_ports, 1):
            node_id = f"node-{i}"
            url = f"http://{host}:{port}"
            self.node_urls[node_id] = url
            self.nodes[node_id] = Proc(
                node_id, [py, "-m", "game_server", "--host", host, "--port", str(port),
                          "--node-id", node_id, "--public-url", url,
                          "--lobby-url", internal_url,
                          "--outbox", str(self.var_dir / f"outbox-{node_id}.sqlite3"),
                          "--log-level", os.environ.get("NODE_LOG_LEVEL", "INFO")],
                {**node_base, "NODE_KEY": derive_node_key(base["NODE_SECRET"], node_id),
                 **((node_env or {}).get(node_id, {}))},
                self.var_dir / f"{node_id}.log", url, "/health", {"node_id": node_id})

    # -- the lobby's database -------------------------------------------------------
    def prepare_database(self, template: str | None = None) -> None:
        """Create the database if missing (from `template` when given), then migrate."""
        create_database(self.pg_url, self.db_name, template)
        if template is None:
            migrate(self.env, self.var_dir / "migrate.log")

    # -- processes ------------------------------------------------------------------
    def start_lobby(self, timeout: float = 60.0) -> None:
        for proc in self.lobby_procs:
            proc.start()
        for proc in self.lobby_procs:
            proc.wait_ready(timeout)
        # after the lobby answers: the matcher counts a node's silence from its own start
        # (services.STARTED), and heartbeats only land once the lobby is up
        self.matcher.start()
        self.verifier.start()

    def stop_lobby(self) -> None:
        """The whole lobby side: matcher loop, verifier and gunicorn."""
        self.matcher.stop()
        self.verifier.stop()
        for proc in self.lobby_procs:
            proc.signal(signal.SIGTERM)
        for proc in self.lobby_procs:
            proc.stop()

    def start_node(self, node_id: str, timeout: float = 30.0) -> None:
        self.nodes[node_id].start().wait_ready(timeout)

    def start(self, timeout: float = 60.0) -> Cluster:
        self.start_lobby(timeout)
        for proc in self.nodes.values():
            proc.start()
        for proc in self.nodes.values():
            proc.wait_ready(timeout)
        return self

    def stop(self) -> None:
        """Nodes first (SIGTERM: clients told 4030, results flushed to the lobby), then the
        matcher and the lobby."""
        for proc in self.nodes.values():
            proc.signal(signal.SIGTERM)
        for proc in self.nodes.values():
            proc.stop()
        self.stop_lobby()

    def dead(self) -> list[str]:
        """Names of processes that should run and do not."""
        procs = [*self.lobby_procs, self.matcher, self.verifier, *self.nodes.values()]
        return [p.name for p in procs if p.popen is not None and not p.running]

    def health(self, node_id: str) -> dict:
        """The node's /health body (also answered, with 503, while it drains)."""
        return http_get(self.node_urls[node_id], "/health")[1]

    def __enter__(self) -> Cluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def migrate(env: Mapping[str, str], log_path: Path) -> None:
    with open(log_path, "ab") as log:
        done = subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
                              cwd=REPO, env=dict(env), stdout=log, stderr=subprocess.STDOUT,
                              timeout=300)
    if done.returncode:
        raise RuntimeError(f"migrate failed; see {log_path}")


def run_loadtest(cluster: Cluster, flags: list[str]) -> int:
    """`python -m loadtest` against the cluster; its exit code."""
    argv = [sys.executable, "-m", "loadtest", "--lobby", cluster.lobby_url]
    for node_id, url in cluster.node_urls.items():
        argv += ["--node-metrics", f"{url}/metrics",
                 "--watch-pid", f"{node_id}={cluster.nodes[node_id].popen.pid}"]
    for proc in cluster.lobby_procs:
        argv += ["--watch-pid", f"{proc.name}={proc.popen.pid}"]
    argv += flags
    print("running:", " ".join(argv[1:]), flush=True)
    return subprocess.run(argv, cwd=REPO).returncode


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python cluster.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--lobby-port", type=int, default=8000)
    p.add_argument("--node-ports", default="8001,8002",
                   help="comma list; one game node per port (default 8001,8002)")
    p.add_argument("--host", default="127.0.0.1", help="listen address of every process")
    p.add_argument("--db", default="arena_cluster", help="PostgreSQL database name")
    p.add_argument("--pg-url", default=os.environ.get("PG_URL", DEFAULT_PG),
                   help="PostgreSQL server, without database")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL", DEFAULT_REDIS))
    p.add_argument("--workers", type=int, default=2, help="uvicorn workers of the lobby")
    p.add_argument("--var-dir", type=Path, default=REPO / "var" / "cluster",
                   help="logs and the nodes' outboxes (default var/cluster)")
    p.add_argument("--threads", type=int, default=4,
                   help="threads of the nodes' gunicorn (--internal-port)")
    p.add_argument("--internal-port", type=int, default=0,
                   help="serve the nodes (heartbeats, results) from a gunicorn of their own "
                        "on this port (default: the nodes use the lobby's port)")
    p.add_argument("--loadtest", default=None, metavar="FLAGS",
                   help="run `python -m loadtest --lobby <lobby> FLAGS` against the cluster, "
                        "then stop")
    args = p.parse_args(argv)
    try:
        args.node_ports = [int(x) for x in args.node_ports.split(",") if x.strip()]
    except ValueError:
        p.error("--node-ports: a comma list of port numbers")
    if not args.node_ports:
        p.error("--node-ports: at least one port")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    env = {}
    if args.loadtest is not None and "GUEST_ALLOWLIST" not in os.environ:
        # the bots' guests all come from this machine: exempt it from the guest limit
        env["GUEST_ALLOWLIST"] = ",".join(dict.fromkeys([args.host, "127.0.0.1", "::1"]))
    cluster = Cluster(db_name=args.db, lobby_port=args.lobby_port, node_ports=args.node_ports,
                      redis_url=args.redis_url, pg_url=args.pg_url, workers=args.workers,
                      threads=args.threads, internal_port=args.internal_port,
                      var_dir=args.var_dir,
                      host=args.host, env=env)
    stopping = False

    def on_signal(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    print(f"database {cluster.database_url}, Redis {cluster.redis_url}; logs in "
          f"{cluster.var_dir}/", flush=True)
    try:
        cluster.prepare_database()
        cluster.start()
        nodes = ", ".join(f"{k} {v}" for k, v in cluster.node_urls.items())
        print(f"\n  realtime-arena cluster: open {cluster.lobby_url}/ and click 'Play as guest'"
              f"\n  (lobby: uvicorn x{args.workers} + matcher; nodes: {nodes}; "
              f"Ctrl-C stops all)\n", flush=True)
        if args.loadtest is not None:
            return run_loadtest(cluster, shlex.split(args.loadtest))
        while not stopping:
            dead = cluster.dead()
            if dead:
                print(f"stopped: {', '.join(dead)} exited (see {cluster.var_dir}/)",
                      file=sys.stderr, flush=True)
                return 1
            time.sleep(0.5)
        return 0
    except Exception as exc:  # a failed start: say why, stop what started
        print(f"cluster: {exc}", file=sys.stderr, flush=True)
        return 1
    finally:
        print("stopping: nodes, matcher, lobby", flush=True)
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
