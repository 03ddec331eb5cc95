"""Fault tests on real processes: `cluster.Cluster` (gunicorn lobby with 2 workers on
PostgreSQL, the matcher loop, 2 game nodes, Redis-backed state) on 127.0.0.1.

One PostgreSQL database is migrated per test run (the template); each test gets a copy of
it (`CREATE DATABASE ... TEMPLATE`, well under a second) and its own key prefix
(`REDIS_PREFIX`) on this machine's Redis, whose keys are deleted after the test (no other
key is touched). Everything is dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from cluster import DEFAULT_PG, Cluster, create_database, drop_database, migrate
from lobby.live import free_port
from tests.services import need

PG_URL = os.environ.get("PG_URL", DEFAULT_PG)
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

# Short everything: matches, waits, heartbeats, the node timeout.
FAST = {
    "MATCH_MODE": "sprint", "MATCH_SIZE": "2", "MATCH_MAX_WAIT": "1", "NODE_TIMEOUT": "3",
    "MATCHER_INTERVAL": "0.2", "DB_CONN_MAX_AGE": "0", "SEAT_TOKEN_TTL": "60",
    "ARENA_HEARTBEAT_INTERVAL": "0.5", "ARENA_RECONNECT_WINDOW": "5",
    "ARENA_JOIN_TIMEOUT": "10", "NODE_LOG_LEVEL": "INFO",
    "SEAT_SECRET": "scale-seat-secret", "NODE_SECRET": "scale-node-secret",
}


def reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers() -> None:
    """Skip (fail under `CI=true`) unless this machine's PostgreSQL and Redis answer."""
    need(reachable("127.0.0.1", 5432), "scale tests need PostgreSQL on 127.0.0.1:5432")
    need(reachable(REDIS_HOST, REDIS_PORT), f"scale tests need Redis on {REDIS_HOST}:{REDIS_PORT}")


@pytest.fixture(scope="session")
def template_db(servers: None, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database, the template of each test's database."""
    name = f"arena_scale_{os.getpid()}_tpl"
    drop_database(PG_URL, name)
    create_database(PG_URL, name)
    try:
        migrate({**os.environ, "DATABASE_URL": f"{PG_URL}/{name}"},
                tmp_path_factory.mktemp("migrate") / "migrate.log")
        yield name
    finally:
        drop_database(PG_URL, name)


REDIS_DB = 14  # away from the cluster's 1 and the default 0; keys are prefixed anyway


def delete_prefix(redis_url: str, prefix: str) -> None:
    with redis.Redis.from_url(redis_url, socket_timeout=5) as client:
        keys = list(client.scan_iter(match=prefix + "*", count=1000))
        if keys:
            client.delete(*keys)


def wait_registered(redis_url: str, prefix: str, node_ids: set[str], timeout: float = 30) -> None:
    """Until every node's heartbeat has reached the lobby: the Redis registry's index
    (`<prefix>nodes`, lobby.shared.nodes) names them all."""
    deadline = time.monotonic() + timeout
    with redis.Redis.from_url(redis_url, socket_timeout=5, decode_responses=True) as client:
        while not node_ids <= client.smembers(f"{prefix}nodes"):
            assert time.monotonic() < deadline, f"nodes {sorted(node_ids)} not registered"
            time.sleep(0.05)


@pytest.fixture
def make_cluster(template_db: str, tmp_path: Path,
                 request: pytest.FixtureRequest) -> Iterator[Callable[..., Cluster]]:
    """make_cluster(redis_url=..., node_env={...}, **env) -> a started Cluster; everything
    it started is stopped and its database dropped after the test."""
    made: list[Cluster] = []
    prefixes: list[tuple[str, str]] = []

    def make(*, redis_url: str | None = None, nodes: int = 2,
             node_env: dict[str, dict[str, str]] | None = None, **env: str) -> Cluster:
        redis_url = redis_url or f"redis://{REDIS_HOST}:{REDIS_PORT}/{REDIS_DB}"
        prefix = f"arena-scale-{os.getpid()}-{time.monotonic_ns()}:"
        prefixes.append((redis_url, prefix))
        name = f"arena_scale_{os.getpid()}_{len(made)}_{request.node.name[:20].lower()}"
        name = "".join(c if c.isalnum() or c == "_" else "_" for c in name)
        cluster = Cluster(db_name=name, lobby_port=free_port(),
                          node_ports=[free_port() for _ in range(nodes)], redis_url=redis_url,
                          pg_url=PG_URL, var_dir=tmp_path / f"cluster{len(made)}",
                          env={**FAST, "REDIS_PREFIX": prefix, **env}, node_env=node_env,
                          matcher_interval=0.2)
        made.append(cluster)
        drop_database(PG_URL, name)
        cluster.prepare_database(template=template_db)
        cluster.start(timeout=90)
        wait_registered(redis_url, prefix, set(cluster.nodes))
        return cluster

    try:
        yield make
    finally:
        for cluster in made:
            cluster.stop()
            drop_database(PG_URL, cluster.db_name)
        for url, prefix in prefixes:
            with contextlib.suppress(redis.RedisError, OSError):  # a test's own Redis, gone
                delete_prefix(url, prefix)
        call = getattr(request.node, "rep_call", None)
        if call is not None and call.failed:
            for cluster in made:  # the processes' logs, for the failure report
                for log in sorted(cluster.var_dir.glob("*.log")):
                    print(f"===== {log}\n{log.read_text(errors='replace')[-4000:]}")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
