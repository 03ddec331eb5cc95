"""Runs the client's JavaScript unit tests (`node --test tests/js/`) as part of pytest."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.services import need

ROOT = Path(__file__).resolve().parents[2]


def test_node_unit_tests() -> None:
    node = shutil.which("node")
    need(node, "node is not installed")
    need((ROOT / "node_modules" / "@msgpack" / "msgpack").is_dir(),
         "node_modules missing: run `npm ci`")
    tests = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "tests" / "js").glob("*.test.mjs"))
    proc = subprocess.run([node, "--test", *tests], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
