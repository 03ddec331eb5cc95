"""`python cluster.py` (what `make run-cluster` runs): it creates and migrates its database,
starts everything, prints the URL, and Ctrl-C stops every process it started."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from cluster import REPO, drop_database, http_get
from lobby.live import free_port

from .conftest import PG_URL, REDIS_DB, delete_prefix

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.timeout(150)]


def test_cluster_command_starts_and_stops(servers, tmp_path):
    db = f"arena_scale_{os.getpid()}_cli"
    prefix = f"arena-scale-cli-{os.getpid()}:"
    lobby_port, ports = free_port(), [free_port(), free_port()]
    drop_database(PG_URL, db)
    env = {**os.environ, "REDIS_PREFIX": prefix, "NODE_LOG_LEVEL": "INFO"}
    proc = subprocess.Popen(
        [sys.executable, "cluster.py", "--lobby-port", str(lobby_port),
         "--node-ports", ",".join(map(str, ports)), "--db", db,
         "--redis-url", f"redis://127.0.0.1:6379/{REDIS_DB}", "--var-dir", str(tmp_path)],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            assert line, f"cluster.py exited early: {''.join(lines)}"
            lines.append(line)
            if "open http://" in line:
                break
        lobby = f"http://127.0.0.1:{lobby_port}"
        assert f"open {lobby}/" in lines[-1]
        assert http_get(lobby, "/")[0] == 200            # migrated: the home page renders
        for i, port in enumerate(ports, 1):
            status, health = http_get(f"http://127.0.0.1:{port}", "/health")
            assert status == 200 and health["node_id"] == f"node-{i}"
            assert health["url"] == f"http://127.0.0.1:{port}"

        proc.send_signal(signal.SIGINT)
        assert proc.wait(60) == 0
        for port in [lobby_port, *ports]:
            with pytest.raises(OSError):
                http_get(f"http://127.0.0.1:{port}", "/")
        for node in ("node-1", "node-2"):  # one SIGTERM each: a clean shutdown, no cut-off
            log = (tmp_path / f"{node}.log").read_text()
            assert "shutting down" in log and "ERROR" not in log, log
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        proc.stdout.close()
        drop_database(PG_URL, db)
        delete_prefix(f"redis://127.0.0.1:6379/{REDIS_DB}", prefix)
