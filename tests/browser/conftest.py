"""Fixtures of the end-to-end browser tests: a lobby (gunicorn, SQLite in a temp dir) and a
game node started as subprocesses, and Debian's Chromium driven by Playwright.

Chromium is never downloaded: the tests use `CHROMIUM` (default `/usr/bin/chromium`) and
are skipped when it is missing (they fail under `CI=true`: `tests.services.need`). Screenshots go to `test-artifacts/browser/`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from loadtest.scenarios import wait_http
from lobby.live import REPO, GunicornServer, free_port
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
    "time_limit": 45,
    "respawn_delay": 1.0,
}


@dataclass
class Servers:
    lobby_url: str
    node_url: str
    node_log: Path
    lobby_log: Path


@pytest.fixture(scope="session")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    need(Path(CHROMIUM).exists(),
         f"no Chromium at {CHROMIUM} (set CHROMIUM, or apt-get install chromium)")
    need((REPO / "static" / "build" / "client.js").exists(),
         "static/build/client.js missing: run `node static/build.mjs` (make does)")
    tmp = tmp_path_factory.mktemp("browser")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    env = {
        "DATABASE_URL": f"sqlite:///{tmp / 'lobby.sqlite3'}", "DB_CONN_MAX_AGE": "0",
        "MATCH_MODE": "sprint", "MATCH_MODES": "sprint", "MATCH_SIZE": "2",
        "MATCH_MAX_WAIT": "120", "MATCHER_INTERVAL": "0",
        "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
    }
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=REPO,
                   env={**os.environ, **env}, check=True, timeout=120)
    lobby_log = ARTIFACTS / "lobby.log"
    node_log = ARTIFACTS / "node.log"
    lobby_log.write_bytes(b"")
    lobby = GunicornServer(workers=1, threads=8, env=env, log_path=lobby_log)
    lobby.start()
    port = free_port()
    with open(node_log, "wb") as log:
        node = subprocess.Popen(
            [sys.executable, "-m", "tests.browser.node_runner", "--port", str(port),
             "--lobby-url", lobby.url, "--outbox", str(tmp / "outbox.sqlite3"),
             "--overrides", json.dumps(GAME_OVERRIDES)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT,
            env={**os.environ, "SEAT_SECRET": SEAT_SECRET, "NODE_SECRET": NODE_SECRET,
                 "ARENA_HEARTBEAT_INTERVAL": "0.5", "ARENA_RECONNECT_WINDOW": "20"})
    try:
        node_url = f"http://127.0.0.1:{port}"
        wait_http(node_url + "/health", node, "the game node", timeout=30)
        time.sleep(1.0)  # a heartbeat or two: the lobby knows the node
        yield Servers(lobby.url, node_url, node_log, lobby_log)
    finally:
        node.terminate()
        try:
            node.wait(15)
        except subprocess.TimeoutExpired:
            node.kill()
            node.wait(5)
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
