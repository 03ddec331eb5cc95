"""Fixtures of the end-to-end browser tests: a lobby (gunicorn, SQLite in a temp dir) and a
game node started as subprocesses, and Debian's Chromium driven by Playwright.

Chromium is never downloaded: the tests use `CHROMIUM` (default `/usr/bin/chromium`) and
are skipped when it is missing (they fail under `CI=true`: `tests.services.need`). Screenshots go to `test-artifacts/browser/`.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.procs import start_node, stop
from lobby.live import REPO, GunicornServer
from tests.services import need

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = REPO / "test-artifacts" / "browser"
SEAT_SECRET = "browser-test-seat-secret"
NODE_SECRET = "browser-test-node-secret"

# A short match: first kill wins (score_limit = kill_score = 2), two spawn points in sight of each other
# (the y = 320 line is clear of walls) and close enough for a shot to carry.
GAME_OVERRIDES = {
    "spawns": [[560, 320], [1040, 320]],
    "score_limit": 2,
    "respawn_delay": 1.0,
}
# Per mode: the Arena's sprint has 45 s for that kill; a tag duel ends by time, soon.
MODE_OVERRIDES = {"sprint": {"time_limit": 45}, "tag-duel": {"time_limit": 15}}
TAG_MODE = "tag-duel"


NODE_ID = "browser-node"


def wait_registered(db: Path, node_id: str, timeout: float = 30.0) -> None:
    """Until the node's heartbeat has reached the lobby: its row in the lobby's database."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.closing(sqlite3.connect(db, timeout=5)) as conn:
            if conn.execute("SELECT 1 FROM matchmaking_node WHERE node_id = ? AND alive",
                            (node_id,)).fetchone():
                return
        time.sleep(0.1)
    raise AssertionError(f"the lobby did not register {node_id} within {timeout:g} s")


def lobby_env(tmp: Path, **settings: str) -> dict[str, str]:
    """A test lobby's settings on its own SQLite database in `tmp`, migrated."""
    env = {"DATABASE_URL": f"sqlite:///{tmp / 'lobby.sqlite3'}", "DB_CONN_MAX_AGE": "0",
           "MATCH_MODE": "sprint", "MATCH_MODES": "sprint", "MATCH_SIZE": "2",
           "MATCH_MAX_WAIT": "120", "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
           **settings}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env={**os.environ, **env}, check=True, timeout=120)
    return env


def start_test_node(lobby_url: str, tmp: Path, node_id: str, log: Path, *,
                    overrides: dict = GAME_OVERRIDES, **env: str) -> tuple[subprocess.Popen, str]:
    """`tests.browser.node_runner` for the lobby at `lobby_url` (short matches), heartbeats
    every 0.5 s; once the lobby has registered it: (process, url)."""
    log.write_bytes(b"")
    proc, port = start_node(
        lambda port: [sys.executable, "-m", "tests.browser.node_runner", "--port", str(port),
                      "--node-id", node_id, "--lobby-url", lobby_url,
                      "--outbox", str(tmp / f"outbox-{node_id}.sqlite3"),
                      "--overrides", json.dumps(overrides),
                      "--mode-overrides", json.dumps(MODE_OVERRIDES)],
        node_id, log_path=log, cwd=REPO, what=node_id,
        env={**os.environ, "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
             "ARENA_HEARTBEAT_INTERVAL": "0.5", **env})
    try:
        wait_registered(tmp / "lobby.sqlite3", node_id)
    except BaseException:
        stop(proc)
        raise
    return proc, f"http://127.0.0.1:{port}"


@dataclass
class Servers:
    lobby_url: str
    node_url: str
    node_log: Path
    lobby_log: Path
    lobby_env: dict[str, str]   # the lobby's settings (e.g. for manage.py commands on its database)


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    need(Path(CHROMIUM).exists(),
         f"no Chromium at {CHROMIUM} (set CHROMIUM, or apt-get install chromium)")
    need((REPO / "static" / "build" / "client.js").exists(),
         "static/build/client.js missing: run `node static/build.mjs` (make does)")
    tmp = tmp_path_factory.mktemp("browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = lobby_env(tmp, MATCH_MODES=f"sprint,{TAG_MODE}", MATCHER_INTERVAL="0")
    lobby_log = ARTIFACTS / "lobby.log"
    node_log = ARTIFACTS / "node.log"
    lobby_log.write_bytes(b"")
    lobby = GunicornServer(workers=1, threads=8, env=env, log_path=lobby_log)
    lobby.start()
    try:
        node, node_url = start_test_node(lobby.url, tmp, NODE_ID, node_log,
                                         ARENA_RECONNECT_WINDOW="20")
    except BaseException:
        lobby.stop()
        raise
    try:
        yield Servers(lobby.url, node_url, node_log, lobby_log, env)
    finally:
        stop(node)
        lobby.stop()


@pytest.fixture(scope="module")
def browser():
    """Module scope: sync Playwright runs an event loop in this thread while it is open,
    and the asyncio tests of the other folders need the thread free when they run."""
    from playwright.sync_api import sync_playwright

    need(Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}")
    with sync_playwright() as p:
        b = p.chromium.launch(
            executable_path=CHROMIUM, headless=True,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                  "--disable-backgrounding-occluded-windows"])
        try:
            yield b
        finally:
            b.close()


def save_screenshot(page, name: str) -> Path:
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path


def publish_screenshot(path: Path) -> None:
    """Copy a screenshot to docs/ when asked to (ARENA_UPDATE_SCREENSHOT=1), so that test
    runs do not change checked-in files by themselves."""
    if os.environ.get("ARENA_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(path, REPO / "docs" / "screenshot.png")
