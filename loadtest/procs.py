"""Child servers on loopback ports, started without a port race, and their readiness.

`free_port()` then `--port N` races: another process may bind N in between, and a
readiness check that takes any 200 then talks to that other process. So:

- gunicorn gets a socket this process has already bound and listens on
  (`listen_socket()`, `--bind fd://N`): no race, and only our child answers there;
- a game node, whose public URL must name its port before it starts, is started on a
  free port and, if it exits because the port was taken, again on another one
  (`start_node`); it is ready when `/health` names *its* node id (`wait_http(expect=)`).

Used by `loadtest.scenarios` and by the tests that start real processes.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

START_TIMEOUT = 30.0   # seconds for a child server to answer
START_ATTEMPTS = 3     # ports tried by `start_node` before giving up
ADDR_IN_USE = ("address already in use", "errno 98", "eaddrinuse")


class PortTaken(RuntimeError):
    """The child exited because another process holds its port."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port free right now (it may be taken before it is used: see the module doc)."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def listen_socket(host: str = "127.0.0.1", backlog: int = 2048) -> socket.socket:
    """A listening socket on a port the kernel picks, inheritable by a child
    (`pass_fds=(s.fileno(),)`; gunicorn: `--bind fd://<fileno>`)."""
    s = socket.socket()
    s.bind((host, 0))
    s.listen(backlog)
    s.set_inheritable(True)
    return s


def port_taken(text: str) -> bool:
    low = text.lower()
    return any(marker in low for marker in ADDR_IN_USE)


def _matches(body: Any, expect: Mapping[str, object] | None) -> bool:
    if not expect:
        return True
    return isinstance(body, dict) and all(body.get(k) == v for k, v in expect.items())


def wait_http(url: str, proc: subprocess.Popen, what: str, log: Path | None = None,
              timeout: float = START_TIMEOUT, expect: Mapping[str, object] | None = None,
              log_offset: int = 0) -> Any:
    """Wait until `url` answers 200 and, with `expect`, a JSON body holding those fields
    (the identity of the process we started). Returns the body. Raises at once if `proc`
    exits: `PortTaken` if its `log` (from byte `log_offset` on) says its port was taken,
    else RuntimeError."""
    deadline = time.monotonic() + timeout
    seen = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            text = log.read_bytes()[log_offset:].decode(errors="replace") \
                if log and log.exists() else ""
            kind = PortTaken if port_taken(text) else RuntimeError
            tail = f"; see {log}:\n{text[-2000:]}" if log else ""
            raise kind(f"{what} exited with {proc.returncode}{tail}")
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                raw = r.read()
                body = json.loads(raw) if r.headers.get_content_type() == "application/json" \
                    else raw.decode(errors="replace")
                if r.status == 200 and _matches(body, expect):
                    return body
                seen = f"; last answer {r.status} {str(body)[:200]}"
        except (OSError, ValueError):
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:g} s{seen}"
                       + (f"; see {log}" if log else ""))


def start_node(argv: Callable[[int], list[str]], node_id: str, *, log_path: Path,
               env: Mapping[str, str] | None = None, cwd: Path | None = None,
               timeout: float = START_TIMEOUT, attempts: int = START_ATTEMPTS,
               what: str = "the node") -> tuple[subprocess.Popen, int]:
    """Start `argv(port)` (a game node whose id is `node_id`) on a free port; on
    `PortTaken`, on another. Ready: its `/health` answers with `node_id`. The log
    (stdout and stderr) goes to `log_path`, appended."""
    for attempt in range(1, attempts + 1):
        port = free_port()
        offset = log_path.stat().st_size if log_path.exists() else 0
        with open(log_path, "ab") as out:
            proc = subprocess.Popen(argv(port), cwd=cwd, env=None if env is None else dict(env),
                                    stdout=out, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/health", proc, what, log_path, timeout,
                      expect={"node_id": node_id}, log_offset=offset)
            return proc, port
        except PortTaken:
            proc.wait(5)
            if attempt == attempts:
                raise
        except BaseException:
            stop(proc)
            raise
    raise AssertionError("unreachable")


def stop(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
