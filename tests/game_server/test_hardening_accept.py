"""Issue 11, item 1: accept errors (EMFILE) are counted and logged rate-limited.

A real node process with a 160-descriptor limit, filled by connections from many
addresses, each under the per-address cap. Before: every failed accept logged a
traceback (about 210 MB of log in 70 s); now, on the asyncio loop, one line per 10 s, and
`arena_accept_errors_total` counts them. On uvloop (`ARENA_EVENT_LOOP=uvloop`) libuv accepts and closes
each connection past the limit itself (its reserve descriptor), so nothing reaches the node
to count or log. On both the seated player keeps playing meanwhile and the node accepts
again once descriptors are free.
"""

from __future__ import annotations

import asyncio
import re
import resource
import sys
import time

import aiohttp
import pytest

from tests.game_server.test_hardening_node import (
    Bystander,
    start_node,
    stop_node,
    tcp_from,
)


def _low_fd_limit() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (160, 160))


@pytest.mark.parametrize("event_loop", ["asyncio", "uvloop"])
async def test_accept_errors_counted_and_logged_once(tmp_path, event_loop):
    proc, url = start_node(tmp_path, {"ARENA_EVENT_LOOP": event_loop}, preexec_fn=_low_fd_limit)
    try:
        socks = []
        try:
            by = await Bystander.join(url, "h-emfile")
            for i in range(20):  # 20 addresses x 15 connections: past the node's 160 descriptors
                for _ in range(15):
                    # (the kernel completes the handshake from its listen backlog)
                    socks.append(await asyncio.wait_for(tcp_from(f"127.0.0.{100 + i}", url), 5))
            t0 = time.monotonic()
            await by.patches(40)  # about 2 s of play while the node cannot accept
            assert time.monotonic() - t0 >= 1.0
            await by.close()
        finally:
            for s in socks:
                s.close()
        async with aiohttp.ClientSession() as http:
            deadline = time.monotonic() + 10
            while True:  # the node accepts again once the descriptors are back
                try:
                    async with http.get(url + "/metrics") as r:
                        text = await r.text()
                    break
                except aiohttp.ClientError:
                    assert time.monotonic() < deadline
                    await asyncio.sleep(0.2)
        errors = float(re.search(r"^arena_accept_errors_total (\S+)", text, re.M).group(1))
        assert errors >= 1 if event_loop == "asyncio" else errors == 0
        stop_node(proc)
        log = proc.stdout.read() if proc.stdout else ""
        assert log.count("accept failed") == (1 if event_loop == "asyncio" else 0), log[-2000:]
        assert "Traceback" not in log and "out of system resource" not in log, log[-2000:]
        assert sys.getsizeof(log) < 20_000
    finally:  # (after a failed assertion too: the node must not outlive the test)
        stop_node(proc)
