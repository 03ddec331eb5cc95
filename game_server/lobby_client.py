"""Node heartbeats to the lobby: `POST /api/internal/nodes/heartbeat` every few seconds,
signed with NODE_SECRET (docs/protocol.md, "Node and lobby: internal HTTP")."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable

import aiohttp

from engine.auth import sign_request

log = logging.getLogger(__name__)

HEARTBEAT_PATH = "/api/internal/nodes/heartbeat"


class LobbyClient:
    def __init__(self, lobby_url: str, *, node_id: str, node_secret: str,
                 status: Callable[[], dict], interval: float = 5.0, timeout: float = 3.0):
        self.lobby_url = lobby_url.rstrip("/")
        self.node_id = node_id
        self.node_secret = node_secret
        self.status = status
        self.interval = interval
        self.timeout = timeout
        self.sent = 0
        self.failures = 0
        self._task: asyncio.Task | None = None
        self._session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        if self.lobby_url and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="heartbeat")

    async def _run(self) -> None:
        while True:
            await self.beat()
            await asyncio.sleep(self.interval)

    async def beat(self) -> bool:
        """One heartbeat; True if the lobby answered 2xx. Never raises."""
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        body = json.dumps({"node_id": self.node_id, **self.status()},
                          separators=(",", ":")).encode()
        headers = sign_request(self.node_secret, node_id=self.node_id, method="POST",
                               path=HEARTBEAT_PATH, body=body, now=time.time())
        headers["Content-Type"] = "application/json"
        try:
            async with self._session.post(self.lobby_url + HEARTBEAT_PATH, data=body,
                                          headers=headers) as resp:
                ok = 200 <= resp.status < 300
                if not ok:
                    log.warning("heartbeat refused: %d %s", resp.status, (await resp.text())[:200])
        except (TimeoutError, aiohttp.ClientError, OSError) as e:
            ok = False
            if self.failures % 12 == 0:  # once a minute at the default interval
                log.warning("heartbeat failed: %s", e)
        if ok:
            self.sent += 1
            self.failures = 0
        else:
            self.failures += 1
        return ok

    async def close(self, *, final: bool = True) -> None:
        """Stop; with `final`, send one last heartbeat (the node now says draining)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if final and self.lobby_url:
            await self.beat()
        if self._session is not None:
            await self._session.close()
            self._session = None
