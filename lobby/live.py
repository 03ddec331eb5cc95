"""The lobby as a real server: gunicorn with several workers, a small HTTP client that
behaves like a browser (cookies, CSRF header), and a node that exists only in its signed
heartbeats. Used by the lobby's benchmarks and by the multi-worker tests."""

from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import quote

REPO = Path(__file__).resolve().parent.parent


def free_port() -> int:
    """A port free right now: another process may take it before it is used. Servers
    started here get a socket bound in advance instead (`listen_socket`)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listen_socket(host: str = "127.0.0.1", backlog: int = 2048) -> socket.socket:
    """A listening socket on a port the kernel picks, for a child to inherit
    (gunicorn `--bind fd://N`): no other process can take the port in between."""
    s = socket.socket()
    s.bind((host, 0))
    s.listen(backlog)
    s.set_inheritable(True)
    return s


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL for another process that must use this (test) database."""
    engine = settings_dict["ENGINE"]
    if engine.endswith("sqlite3"):
        return f"sqlite:///{settings_dict['NAME']}"
    if engine.endswith("postgresql"):
        auth = quote(settings_dict.get("USER") or "")
        if settings_dict.get("PASSWORD"):
            auth += ":" + quote(settings_dict["PASSWORD"])
        host = settings_dict.get("HOST") or "127.0.0.1"
        port = settings_dict.get("PORT") or 5432
        return f"postgres://{auth}{'@' if auth else ''}{host}:{port}/{settings_dict['NAME']}"
    raise ValueError(f"unsupported database engine {engine}")


class LobbyServer:
    """The lobby as a child server process on 127.0.0.1:<port>, started and stopped by this
    object. The port is bound here and handed over, so whatever answers on it is our
    child; it is up when `GET /api/csrf` answers 200. Subclasses give the command line."""

    server = "lobby"
    backlog = 2048
    stop_timeout = 10.0

    def __init__(self, *, workers: int = 3, env: dict[str, str] | None = None,
                 log_path: Path | None = None, cwd: Path | None = None) -> None:
        self.sock = listen_socket(backlog=self.backlog)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.env = {**os.environ, "DEBUG": "0", "ALLOWED_HOSTS": "127.0.0.1,localhost",
                    **(env or {})}
        self.log_path = log_path
        self.cwd = cwd or REPO  # the checkout whose lobby is served
        self.proc: subprocess.Popen | None = None

    def argv(self, fd: int) -> list[str]:
        raise NotImplementedError

    def start(self, timeout: float = 60.0):
        log = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        self.proc = subprocess.Popen(
            self.argv(self.sock.fileno()), cwd=self.cwd, env=self.env, stdout=log, stderr=log,
            pass_fds=(self.sock.fileno(),))
        self.sock.close()  # the child holds it now
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.server} exited with {self.proc.returncode}")
            try:
                if Session(self.url).request("GET", "/api/csrf")[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"{self.server} did not answer in time")

    def stop(self) -> None:
        self.sock.close()
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class GunicornServer(LobbyServer):
    """`gunicorn lobby.wsgi` (`--bind fd://N`)."""

    server = "gunicorn"

    def __init__(self, *, workers: int = 3, env: dict[str, str] | None = None,
                 threads: int = 1, log_path: Path | None = None, cwd: Path | None = None) -> None:
        super().__init__(workers=workers, env=env, log_path=log_path, cwd=cwd)
        self.threads = threads

    def argv(self, fd: int) -> list[str]:
        return [sys.executable, "-m", "gunicorn", "lobby.wsgi", "-w", str(self.workers),
                "--threads", str(self.threads), "-b", f"fd://{fd}",
                "--timeout", "60", "--graceful-timeout", "5", "--log-level", "warning"]


class Session:
    """One browser: a cookie jar shared by all threads, a keep-alive connection per thread."""

    def __init__(self, base_url: str, timeout: float = 30.0) -> None:
        host, port = base_url.removeprefix("http://").split(":")
        self.host, self.port, self.timeout = host, int(port.rstrip("/")), timeout
        self.cookies: dict[str, str] = {}
        self._lock = threading.Lock()
        self._local = threading.local()

    def _connection(self) -> http.client.HTTPConnection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = http.client.HTTPConnection(self.host, self.port,
                                                                 timeout=self.timeout)
        return conn

    def request(self, method: str, path: str, body: Any = None,
                headers: dict[str, str] | None = None, raw: bytes | None = None
                ) -> tuple[int, Any]:
        """(status, parsed JSON or text). Retries once on a dropped keep-alive connection."""
        with self._lock:
            cookies = dict(self.cookies)
        for attempt in (0, 1):
            conn = self._connection()
            try:
                status, payload, new_cookies = call(conn, method, path, cookies, body=body,
                                                    headers=headers, raw=raw)
                break
            except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
        if new_cookies:
            with self._lock:
                self.cookies.update(new_cookies)
        return status, payload

    def csrf(self) -> str:
        return self.request("GET", "/api/csrf")[1]["csrf"]

    def guest(self) -> dict:
        self.csrf()
        status, body = self.request("POST", "/api/guest")
        if status != 200:
            raise RuntimeError(f"guest sign-in failed: {status} {body}")
        return body

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()


def call(conn: http.client.HTTPConnection, method: str, path: str, cookies: dict[str, str],
         *, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
         ) -> tuple[int, Any, dict[str, str]]:
    """One request as a browser sends it: cookies, X-CSRFToken from the csrftoken cookie.

    Returns (status, parsed JSON or text, cookies set by the answer).
    """
    data = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
    hdrs = {"Content-Type": "application/json", "X-CSRFToken": cookies.get("csrftoken", ""),
            **(headers or {})}
    if cookies:
        hdrs["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    conn.request(method, path, body=data if method != "GET" else None, headers=hdrs)
    resp = conn.getresponse()
    payload = resp.read()
    jar: SimpleCookie = SimpleCookie()
    for header in resp.headers.get_all("Set-Cookie") or []:
        jar.load(header)
    new_cookies = {k: m.value for k, m in jar.items()}
    if resp.headers.get("Content-Type", "").startswith("application/json"):
        return resp.status, json.loads(payload), new_cookies
    return resp.status, payload.decode(errors="replace"), new_cookies


class HeartbeatOnlyNode:
    """A game node that only heartbeats (signed, every `period` s from `start()` on), so
    that a lobby without a real node places matches: the benchmarks' stand-in. Its
    `players` is what it reports (10**6: full, tickets wait with "servers full")."""

    def __init__(self, lobby_url: str, node_secret: str, node_id: str, modes: list[str],
                 period: float = 5.0) -> None:
        self.lobby_url, self.node_secret, self.node_id = lobby_url, node_secret, node_id
        self.modes, self.period = modes, period
        self.players = 0
        self._stop = threading.Event()

    def start(self) -> None:
        self.heartbeat()
        threading.Thread(target=self._beat, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()

    def _beat(self) -> None:
        while not self._stop.wait(self.period):
            self.heartbeat()

    def heartbeat(self) -> None:
        from engine.auth import derive_node_key, sign_request

        path = "/api/internal/nodes/heartbeat"
        body = json.dumps({"node_id": self.node_id, "url": "http://127.0.0.1:9",
                           "capacity": 10**6, "rooms": 0, "players": self.players,
                           "draining": False, "modes": self.modes}).encode()
        headers = sign_request(derive_node_key(self.node_secret, self.node_id),
                               node_id=self.node_id, method="POST", path=path, body=body,
                               now=time.time())
        status = Session(self.lobby_url).request("POST", path, raw=body, headers=headers)[0]
        if status != 200:
            raise RuntimeError(f"heartbeat answered {status}")
