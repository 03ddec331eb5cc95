"""Issue 11, items 16 and 18: what clients and the log see when a node stops.

- SIGTERM on a real node process: a seated xhr-polling client gets `c[4030,...]` (before:
  `match_end` and `error` 4030, then its next poll found the node gone);
- the shutdown flush with the lobby down logs the delay it really waits (before: the
  backoff's "retry in 29.2 s" while it retried every 0.2 s).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import signal
import time
import uuid

import aiohttp

from engine import codec
from game_server.outbox import FLUSH_RETRY, Outbox
from lobby.live import free_port
from tests.game_server.test_hardening_node import seat, start_node, stop_node


async def test_sigterm_reaches_an_xhr_polling_client_as_c4030(tmp_path):
    proc, url = start_node(tmp_path)
    try:
        async with aiohttp.ClientSession() as http:
            base = f"{url}/play/000/{uuid.uuid4().hex}"
            async with http.post(base + "/xhr") as r:
                assert await r.text() == "o\n"
            body = json.dumps([codec.to_text(codec.encode(codec.Join(seat("h-term"))))])
            async with http.post(base + "/xhr_send", data=body) as r:
                assert r.status == 204
            frames: list[str] = []
            seated = asyncio.Event()

            async def poll() -> None:  # back to back, as sockjs-client does
                while True:
                    async with http.post(base + "/xhr") as r:
                        lines = (await r.text()).splitlines()
                    frames.extend(lines)
                    if any(line.startswith("a") for line in lines):
                        seated.set()
                    if any(line.startswith("c") for line in lines):
                        return

            poller = asyncio.create_task(poll())
            await asyncio.wait_for(seated.wait(), 10)
            proc.send_signal(signal.SIGTERM)
            await asyncio.wait_for(poller, 10)
        assert frames[-1] == 'c[4030,"Node shutting down"]'
        messages = [codec.decode_text(m, 1 << 22) for f in frames if f.startswith("a")
                    for m in json.loads(f[1:])]
        assert codec.Error(4030, "Node shutting down") in messages
        assert await asyncio.get_running_loop().run_in_executor(None, proc.wait, 15) == 0
    finally:
        stop_node(proc)


async def test_shutdown_flush_logs_the_delay_it_waits(tmp_path, caplog):
    lobby = f"http://127.0.0.1:{free_port()}"  # nothing listens: connection refused
    outbox = Outbox(str(tmp_path / "o.sqlite3"), node_id="n", node_secret="k", lobby_url=lobby,
                    retry_min=15.0, retry_max=30.0)
    try:
        outbox.add({"match_id": "m1", "status": "aborted"})
        caplog.set_level(logging.WARNING, logger="game_server.outbox")
        t0 = time.monotonic()
        assert not await outbox.flush(1.0)
        elapsed = time.monotonic() - t0
    finally:
        await outbox.close()
    lines = [r.getMessage() for r in caplog.records if "not delivered" in r.getMessage()]
    assert len(lines) >= 2  # several tries within the second: each said when the next is
    delays = {float(m) for line in lines for m in re.findall(r"retries in ([\d.]+) s", line)}
    assert delays == {FLUSH_RETRY}
    assert len(lines) <= elapsed / FLUSH_RETRY + 1
