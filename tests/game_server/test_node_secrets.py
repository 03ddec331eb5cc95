"""Node secrets on real processes (issue 11, item 7): outside development mode a node
refuses to start without real secrets; each node signs with its own key, derived from the
lobby's master NODE_SECRET, so one node cannot post heartbeats or results as another."""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.auth import derive_node_key, sign_request
from lobby.live import GunicornServer, Session, free_port

REPO = Path(__file__).resolve().parents[2]
SECRET_VARS = ("ARENA_ENV", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "SEAT_SECRET",
               "NODE_SECRET", "NODE_KEY")
HEARTBEAT = "/api/internal/nodes/heartbeat"


def production_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    return {**env, "ARENA_ENV": "", "DJANGO_SETTINGS_MODULE": "lobby.settings", **extra}


def node_argv(port: int, node_id: str = "node-1", lobby_url: str = "") -> list[str]:
    argv = [sys.executable, "-m", "game_server", "--port", str(port), "--node-id", node_id,
            "--log-level", "WARNING"]
    return argv + (["--lobby-url", lobby_url] if lobby_url else [])


def test_derived_keys_differ_per_node_and_master():
    a, b = derive_node_key("master", "node-1"), derive_node_key("master", "node-2")
    assert a != b and a == derive_node_key(b"master", "node-1")
    assert a != derive_node_key("other-master", "node-1") and len(a) == 64


@pytest.mark.parametrize("given, reason", [
    ({}, "SEAT_SECRET is unset"),
    ({"SEAT_SECRET": "dev-seat-secret", "NODE_KEY": "k" * 64}, "SEAT_SECRET is unset or the development value"),
    ({"SEAT_SECRET": "s" * 32}, "NODE_KEY is unset"),
    ({"SEAT_SECRET": "s" * 32, "NODE_SECRET": "m" * 32}, "a node holds only its own NODE_KEY"),
    ({"SEAT_SECRET": "s" * 32, "NODE_KEY": derive_node_key("dev-node-secret", "node-1")},
     "derived from the development NODE_SECRET"),
    ({"SEAT_SECRET": "s" * 32, "NODE_KEY": "short"}, "NODE_KEY is shorter"),
])
@pytest.mark.timeout(60)
def test_node_refuses_to_start_without_real_secrets(tmp_path, given, reason):
    done = subprocess.run(node_argv(free_port()), cwd=REPO, env=production_env(**given),
                          capture_output=True, text=True, timeout=30)
    assert done.returncode != 0
    assert "refusing to start outside development mode" in done.stderr and reason in done.stderr
    assert "Traceback" not in done.stderr  # a message, not a crash


def wait_health(url: str, proc: subprocess.Popen, node_id: str, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the node exited"
        try:
            status, body = Session(url).request("GET", "/health")
            if status == 200 and body.get("node_id") == node_id:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError("the node did not answer /health")


@pytest.fixture
def lobby(tmp_path):
    """A production-mode lobby (gunicorn, real secrets, its own SQLite file)."""
    master = secrets.token_urlsafe(32)
    env = production_env(SECRET_KEY=secrets.token_urlsafe(50), SEAT_SECRET=secrets.token_urlsafe(32),
                         NODE_SECRET=master, DATABASE_URL=f"sqlite:///{tmp_path / 'lobby.sqlite3'}")
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env=env, check=True, timeout=120)
    with GunicornServer(workers=1, env=env) as srv:
        yield srv, env, tmp_path / "lobby.sqlite3"


def heartbeat(url: str, key: str, node_id: str) -> int:
    body = json.dumps({"node_id": node_id, "url": "http://127.0.0.1:9", "capacity": 10,
                       "rooms": 0, "players": 0, "draining": False}).encode()
    headers = sign_request(key, node_id=node_id, method="POST", path=HEARTBEAT, body=body,
                           now=time.time())
    return Session(url).request("POST", HEARTBEAT, raw=body, headers=headers)[0]


def registered(db_file: Path) -> set[str]:
    with sqlite3.connect(db_file) as db:
        return {row[0] for row in db.execute("SELECT node_id FROM matchmaking_node")}


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_a_node_signs_with_its_own_key_only(lobby):
    srv, env, db_file = lobby
    master = env["NODE_SECRET"]
    key1 = derive_node_key(master, "node-1")
    # a real node in production mode, holding only its own key, registers itself
    port = free_port()
    node_env = {k: v for k, v in env.items() if k not in ("NODE_SECRET", "SECRET_KEY")}
    node = subprocess.Popen(node_argv(port, "node-1", srv.url), cwd=REPO,
                            env={**node_env, "NODE_KEY": key1, "ARENA_HEARTBEAT_INTERVAL": "0.3"},
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_health(f"http://127.0.0.1:{port}", node, "node-1")
        deadline = time.monotonic() + 20
        while "node-1" not in registered(db_file) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "node-1" in registered(db_file)
    finally:
        node.terminate()
        node.wait(15)
    # node-1's key cannot speak for node-2; the master is no node's key either
    assert heartbeat(srv.url, key1, "node-2") == 403
    assert heartbeat(srv.url, master, "node-2") == 403
    assert "node-2" not in registered(db_file)
    assert heartbeat(srv.url, derive_node_key(master, "node-2"), "node-2") == 200
    assert "node-2" in registered(db_file)
