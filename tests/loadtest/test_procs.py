"""`loadtest.procs`: child servers started without a port race, ready only when the
process that answers is the one we started."""

from __future__ import annotations

import errno
import json
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtest import procs

# A stand-in for `python -m game_server`: binds the port it is given (exits with
# EADDRINUSE if it is taken, as the node does) and answers /health with its node id.
FAKE_NODE = r"""
import json, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
port, node_id = int(sys.argv[1]), sys.argv[2]
class H(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"ok": True, "node_id": node_id}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
HTTPServer(("127.0.0.1", port), H).serve_forever()
"""


def fake_node(node_id: str):
    return lambda port: [sys.executable, "-c", FAKE_NODE, str(port), node_id]


@pytest.fixture
def other_node() -> Iterator[int]:
    """Another process's node (`node_id` "other") holding a port; yields the port."""
    class Health(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = json.dumps({"ok": True, "node_id": "other"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen]:
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield proc
    procs.stop(proc, 1)


def test_readiness_refuses_a_health_answer_of_another_node(other_node, sleeper) -> None:
    url = f"http://127.0.0.1:{other_node}/health"
    assert procs.wait_http(url, sleeper, "x", expect={"node_id": "other"})["node_id"] == "other"
    with pytest.raises(RuntimeError, match="did not answer.*last answer 200"):
        procs.wait_http(url, sleeper, "the node", timeout=1, expect={"node_id": "mine"})


def test_a_child_that_lost_its_port_is_reported_as_such(other_node, tmp_path: Path) -> None:
    log = tmp_path / "node.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(fake_node("mine")(other_node), stdout=out,
                                stderr=subprocess.STDOUT)
    with pytest.raises(procs.PortTaken):
        procs.wait_http(f"http://127.0.0.1:{other_node}/health", proc, "the node", log,
                        expect={"node_id": "mine"})


def test_start_node_moves_to_another_port_when_its_port_is_taken(
        other_node, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The race itself: the first free port is taken (by another node) before ours binds it."""
    ports = iter([other_node])
    real = procs.free_port
    monkeypatch.setattr(procs, "free_port", lambda: next(ports, None) or real())
    proc, port = procs.start_node(fake_node("mine"), "mine", log_path=tmp_path / "node.log")
    try:
        assert port != other_node and proc.poll() is None
        assert procs.wait_http(f"http://127.0.0.1:{port}/health", proc, "the node",
                               expect={"node_id": "mine"})["ok"] is True
        assert procs.port_taken((tmp_path / "node.log").read_text())  # the first attempt
    finally:
        procs.stop(proc, 5)


def test_start_node_gives_up_after_its_attempts(other_node, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(procs, "free_port", lambda: other_node)
    with pytest.raises(procs.PortTaken):
        procs.start_node(fake_node("mine"), "mine", log_path=tmp_path / "node.log", attempts=2)


def test_a_listen_socket_is_ours_before_any_child_starts() -> None:
    """What gunicorn gets (`--bind fd://N`): the port is held from the start, so no other
    process can take it and only our child will answer there."""
    with procs.listen_socket() as s, socket.socket() as intruder:
        with pytest.raises(OSError) as err:
            intruder.bind(("127.0.0.1", s.getsockname()[1]))
        assert err.value.errno == errno.EADDRINUSE
        assert s.get_inheritable()
