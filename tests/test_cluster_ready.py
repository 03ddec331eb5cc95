"""`cluster.Proc.wait_ready`: a node is ready when its /health names it, not when any
process on its port answers 200."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from cluster import Proc
from loadtest.procs import free_port
from tests.loadtest.test_procs import FAKE_NODE


def serving(tmp_path: Path, answers_as: str, expect: str) -> Proc:
    """A process whose /health says `answers_as`, waited for as node `expect`."""
    port = free_port()
    return Proc("node", [sys.executable, "-c", FAKE_NODE, str(port), answers_as], {},
                tmp_path / f"{answers_as}.log", f"http://127.0.0.1:{port}", "/health",
                {"node_id": expect}).start()


def test_ready_when_health_names_the_node(tmp_path: Path) -> None:
    proc = serving(tmp_path, "node-1", "node-1")
    try:
        proc.wait_ready(10)
    finally:
        proc.kill()


def test_a_200_of_another_node_is_not_ready(tmp_path: Path) -> None:
    proc = serving(tmp_path, "node-2", "node-1")
    try:
        with pytest.raises(RuntimeError, match="did not answer"):
            proc.wait_ready(1.5)
    finally:
        proc.kill()
