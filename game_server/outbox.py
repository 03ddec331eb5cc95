"""The durable results outbox: a SQLite file, written before anything is sent.

A match result is inserted (committed, fsynced) first, then POSTed to the lobby's
`/api/internal/results`, signed with NODE_SECRET. A row stays pending until the lobby
answers 2xx (or 409: it has it already); a network error, 429 or 5xx retries with
exponential backoff; any other 4xx is a permanent rejection: the row is kept, marked and
logged, never retried. Pending rows of a previous run are delivered at start, so neither
a lobby outage nor a node restart loses a result. The lobby is idempotent by match id.

A result may come with its match's replay file (bytes, engine/recording.py), stored in the
same transaction. Before the result is posted, the replay goes to the lobby as its own
signed upload (`POST /api/internal/replays/<match_id>`, the raw file), with the same
retries; once the lobby has it (2xx or 409) its bytes are dropped here. A replay the lobby
refuses (another 4xx) is marked and logged, and the result is posted without it (the
lobby then cannot verify it: docs/lobby.md, "Replays").
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import random
import sqlite3
import time

import aiohttp

from engine.auth import sign_request

log = logging.getLogger(__name__)

RESULTS_PATH = "/api/internal/results"
REPLAYS_PATH = "/api/internal/replays/"   # + match id
REPLAY_TIMEOUT = 60.0  # seconds for one replay upload (up to engine.recording.MAX_FILE_BYTES)
FLUSH_RETRY = 0.2  # seconds between two passes of the shutdown flush

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    match_id   TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    created    REAL NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_try   REAL NOT NULL DEFAULT 0,
    delivered  REAL,
    rejected   TEXT,
    last_error TEXT
)
"""
REPLAY_SCHEMA = """
CREATE TABLE IF NOT EXISTS replays (
    match_id   TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    size       INTEGER NOT NULL,
    uploaded   REAL,
    rejected   TEXT
)
"""


class Outbox:
    def __init__(self, path: str, *, node_id: str, node_secret: str, lobby_url: str = "",
                 retry_min: float = 0.5, retry_max: float = 30.0, request_timeout: float = 5.0):
        if os.path.dirname(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
        self.path = path
        self.node_id = node_id
        self.node_secret = node_secret
        self.lobby_url = lobby_url.rstrip("/")
        self.retry_min = retry_min
        self.retry_max = retry_max
        self.request_timeout = request_timeout
        self.db = sqlite3.connect(path, isolation_level=None)  # autocommit: each write is durable
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(SCHEMA)
        self.db.execute(REPLAY_SCHEMA)
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None
        self._flushing = False  # the shutdown flush retries every FLUSH_RETRY, not on backoff

    # --- storage ----------------------------------------------------------------------------

    def add(self, result: dict, replay: bytes | None = None) -> None:
        """Store one result and its replay file (durably, in one transaction), then wake
        the sender. A second result for the same match id is ignored: the first one wins."""
        body = json.dumps(result, separators=(",", ":"), sort_keys=True)
        match_id = result["match_id"]
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute("INSERT OR IGNORE INTO results (match_id, body, created) "
                                  "VALUES (?, ?, ?)", (match_id, body, time.time()))
            if replay is not None and cur.rowcount:
                self.db.execute("INSERT OR IGNORE INTO replays (match_id, data, size) "
                                "VALUES (?, ?, ?)", (match_id, replay, len(replay)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._wake.set()

    def replay_rows(self) -> list[dict]:
        """The replays stored with results: size, uploaded (time) or rejected (why)."""
        cur = self.db.execute("SELECT match_id, size, length(data), uploaded, rejected "
                              "FROM replays ORDER BY rowid")
        return [{"match_id": m, "size": n, "held": h, "uploaded": u, "rejected": r}
                for m, n, h, u, r in cur.fetchall()]

    def pending_count(self) -> int:
        return self.db.execute(
            "SELECT COUNT(*) FROM results WHERE delivered IS NULL AND rejected IS NULL").fetchone()[0]

    def rows(self) -> list[dict]:
        cur = self.db.execute("SELECT match_id, body, attempts, delivered, rejected, last_error "
                              "FROM results ORDER BY created")
        return [{"match_id": m, "result": json.loads(b), "attempts": a, "delivered": d,
                 "rejected": r, "last_error": e} for m, b, a, d, r, e in cur.fetchall()]

    def _due(self, now: float, *, all_pending: bool = False) -> list[tuple[str, str, int]]:
        sql = ("SELECT match_id, body, attempts FROM results WHERE delivered IS NULL "
               "AND rejected IS NULL")
        if all_pending:
            return self.db.execute(sql + " ORDER BY created").fetchall()
        return self.db.execute(sql + " AND next_try <= ? ORDER BY created", (now,)).fetchall()

    def _next_try(self) -> float | None:
        return self.db.execute("SELECT MIN(next_try) FROM results WHERE delivered IS NULL "
                               "AND rejected IS NULL").fetchone()[0]

    # --- delivery ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None and self.lobby_url:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="outbox")
            log.info("outbox %s: %d pending", self.path, self.pending_count())
        elif not self.lobby_url:
            log.warning("outbox %s: no lobby URL, results are only stored", self.path)

    async def _run(self) -> None:
        while True:
            await self._pass()
            next_try = self._next_try()
            self._wake.clear()
            timeout = None if next_try is None else max(0.05, next_try - time.time())
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    async def _pass(self, *, all_pending: bool = False) -> None:
        async with self._lock:
            for match_id, body, attempts in self._due(time.time(), all_pending=all_pending):
                await self._deliver(match_id, body, attempts)

    async def _deliver(self, match_id: str, body: str, attempts: int) -> bool:
        if self._session is None:
            # A fresh connection per post: results are rare, and a kept-alive connection
            # that the lobby's server has just closed fails the post ("Server disconnected").
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.request_timeout),
                connector=aiohttp.TCPConnector(force_close=True))
        if not await self._upload_replay(match_id, attempts):
            return False
        raw = body.encode()
        headers = sign_request(self.node_secret, node_id=self.node_id, method="POST",
                               path=RESULTS_PATH, body=raw, now=time.time())
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(self.lobby_url + RESULTS_PATH, data=raw,
                                          headers=headers) as resp:
                status = resp.status
                text = (await resp.text())[:300]
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            self._retry(match_id, attempts, f"{type(e).__name__}: {e}"[:300])
            return False
        if 200 <= status < 300 or status == 409:
            self.db.execute("UPDATE results SET delivered = ?, attempts = ? WHERE match_id = ?",
                            (time.time(), attempts + 1, match_id))
            log.info("result of %s delivered (%d)", match_id, status)
            return True
        if 400 <= status < 500 and status != 429:
            self.db.execute("UPDATE results SET rejected = ?, attempts = ? WHERE match_id = ?",
                            (f"{status} {text}", attempts + 1, match_id))
            log.error("result of %s rejected by the lobby: %d %s", match_id, status, text)
            return False
        self._retry(match_id, attempts, f"HTTP {status} {text}")
        return False

    async def _upload_replay(self, match_id: str, attempts: int) -> bool:
        """Upload the match's replay if one waits; False (retry scheduled) when the result
        must wait for it. True when there is none, it is in, or the lobby refused it."""
        row = self.db.execute("SELECT data FROM replays WHERE match_id = ? AND uploaded IS NULL "
                              "AND rejected IS NULL", (match_id,)).fetchone()
        if row is None:
            return True
        data = bytes(row[0])
        path = REPLAYS_PATH + match_id
        headers = sign_request(self.node_secret, node_id=self.node_id, method="POST",
                               path=path, body=data, now=time.time())
        headers["Content-Type"] = "application/octet-stream"
        try:
            async with self._session.post(
                    self.lobby_url + path, data=data, headers=headers,
                    timeout=aiohttp.ClientTimeout(total=max(self.request_timeout,
                                                            REPLAY_TIMEOUT))) as resp:
                status = resp.status
                text = (await resp.text())[:300]
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            self._retry(match_id, attempts, f"replay: {type(e).__name__}: {e}"[:300])
            return False
        if 200 <= status < 300 or status == 409:   # the lobby has it: the bytes can go
            self.db.execute("UPDATE replays SET uploaded = ?, data = x'' WHERE match_id = ?",
                            (time.time(), match_id))
            log.info("replay of %s uploaded (%d bytes, %d)", match_id, len(data), status)
            return True
        if 400 <= status < 500 and status != 429:
            self.db.execute("UPDATE replays SET rejected = ? WHERE match_id = ?",
                            (f"{status} {text}", match_id))
            log.error("replay of %s rejected by the lobby: %d %s; the result goes without it",
                      match_id, status, text)
            return True
        self._retry(match_id, attempts, f"replay: HTTP {status} {text}")
        return False

    def _retry(self, match_id: str, attempts: int, error: str) -> None:
        delay = min(self.retry_max, self.retry_min * 2 ** attempts) * random.uniform(0.8, 1.0)
        self.db.execute("UPDATE results SET attempts = ?, next_try = ?, last_error = ? "
                        "WHERE match_id = ?", (attempts + 1, time.time() + delay, error, match_id))
        if self._flushing:
            log.warning("result of %s not delivered (%s); shutdown flush retries in %.1f s",
                        match_id, error, FLUSH_RETRY)
        else:
            log.warning("result of %s not delivered (%s); retry in %.1f s", match_id, error,
                        delay)

    async def flush(self, timeout: float) -> bool:
        """Try every pending row now, until none is left or `timeout`. True if all went."""
        if not self.lobby_url:
            return self.pending_count() == 0
        deadline = time.monotonic() + timeout
        self._flushing = True
        try:
            while self.pending_count():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._pass(all_pending=True), left)
                if self.pending_count():
                    await asyncio.sleep(min(FLUSH_RETRY, max(0.0, deadline - time.monotonic())))
        finally:
            self._flushing = False
        return self.pending_count() == 0

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._session is not None:
            await self._session.close()
            self._session = None
        self.db.close()
