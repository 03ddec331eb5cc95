"""Each documented scenario, small (`--small`: a few bots for a few seconds), end to end:
`python -m loadtest.scenarios NAME --small` starts a real lobby and node, runs the bots
over the real path, and writes a complete report. This checks that the tool works and
that the report holds every figure, not the speed (docs/performance.md has the figures)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtest.report import REPORT_KEYS, SUMMARY_KEYS

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


def run_scenario(name: str, tmp_path: Path, *args: str, env: dict | None = None) -> dict:
    report = tmp_path / f"{name}.json"
    proc = subprocess.run([sys.executable, "-m", "loadtest.scenarios", name, "--small", "--report", str(report),
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=100,
                          env={**os.environ, **(env or {})})
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "[PASS]" in proc.stdout or "[FAIL]" in proc.stdout  # the summary table and targets
    assert "connected" in proc.stderr  # the live progress lines
    data = json.loads(report.read_text())
    for suffix in (".png", ".html"):
        assert report.with_suffix(suffix).stat().st_size > 1000
    return data


def check_complete(r: dict) -> None:
    assert set(REPORT_KEYS) <= set(r)
    s = r["summary"]
    assert set(SUMMARY_KEYS) <= set(s)
    assert s["error_count"] == 0, s["errors"]
    assert s["frames"]["received"] > 0 and s["frames"]["expected"] > 0
    assert s["frames"]["patch_hz"] > 0
    for key in ("time_to_seat_ms", "queue_wait_ms", "input_ack_ms", "state_interval_ms", "rtt_ms"):
        assert s[key]["count"] > 0 and s[key]["p99"] >= s[key]["p50"] > 0, key
    assert s["bytes"]["in"] > 0 and s["bytes"]["out"] > 0
    assert r["per_bot"]["count"] == r["bots"] and r["per_bot"]["bytes_in"]["min"] > 0
    node = r["node"]
    assert node["scrapes"] > 0 and node["scrape_failures"] == 0
    assert node["tick_p99_ms"] is not None and node["overruns"] is not None
    assert {"node", "lobby", "bots"} <= set(r["processes"])
    rows = [row for row in r["timeline"] if not row.get("settling")]
    assert rows and max(row["in_match"] for row in rows) > 0
    assert any(row["node_players"] for row in rows)
    assert r["targets"] and all(isinstance(t["pass"], bool) for t in r["targets"])
    assert s["inputs"]["acked"] > 0 and s["inputs"]["acked_ratio"] is not None
    # every welcome got the game's own brain (a connection closed before its welcome gets none)
    assert s["brains"]["game"] == s["counters"]["welcomes"] > 0 and s["brains"]["generic"] == 0


def test_c1k_small(tmp_path):
    r = run_scenario("c1k", tmp_path)
    check_complete(r)
    assert r["summary"]["matches"]["started"] == r["bots"]  # every bot was seated and played


def test_polling_small(tmp_path):
    r = run_scenario("polling", tmp_path)
    check_complete(r)
    assert r["per_bot"]["transports"] == {"xhr-polling": 4, "xhr-streaming": 4}
    assert r["per_bot"]["frames"]["min"] > 0  # each bot, on each transport, got state


def test_churn_small(tmp_path):
    r = run_scenario("churn", tmp_path)
    check_complete(r)
    s = r["summary"]
    assert s["counters"]["leaves"] > 0 and s["closes"].get("1000 after leave", 0) > 0
    settled = r["node"]["after_settle"]
    assert settled is not None and (settled["rooms"], settled["players"]) == (0, 0)


def test_slow_client_small(tmp_path):
    """The documented outcome (docs/performance.md): the node closes every stalled bot with
    4020 and no one else. A small run's frames are small (8 bots, 4-player rooms), so the
    node's buffers are shrunk to fill within the stall, and the run outlasts it."""
    r = run_scenario("slow-client", tmp_path, "--node-env", "ARENA_SOCKET_SEND_BUFFER=4096",
                     "--node-env", "ARENA_MAX_SEND_QUEUE=8", "--", "--duration", "16",
                     "--slow-stall", "13")
    check_complete(r)
    slow = r["groups"]["slow"]
    stalls = slow["matches"]["stalls"]
    assert stalls > 0
    assert int(r["node"]["closed_by_code"].get("4020", 0)) == stalls, r["node"]["closed_by_code"]
    assert [t["pass"] for t in r["targets"] if t["name"].startswith("stalled bots")] == [True]
    # what a stalled bot itself saw: the 4020, or 1006 (no close frame: "abnormal" when the
    # client reports no code) when it sat behind the buffer the node gave up on, or nothing
    # yet when the run stopped it first; never anything else
    assert set(slow["closes"]) <= {"4020 after stall", "1006 after stall",
                                   "abnormal after stall", "closed by bot"}, slow["closes"]


def test_tag_small(tmp_path):
    """The second game through the same path: tag's modes at the lobby, its rooms on the
    node, its brain in the bots (the report names the mode)."""
    r = run_scenario("c1k", tmp_path, "--mode", "tag")
    check_complete(r)
    assert r["config"]["mode"] == "tag"
    assert r["summary"]["matches"]["started"] == r["bots"]


def test_a_game_that_never_acks_fails_its_targets(tmp_path):
    """A game that applies inputs but never records their seq as the ack
    (tests/loadtest/noack_game, served by the lobby and the node through GAMES): the run
    completes, its bots play and get state, and the report says FAIL."""
    r = run_scenario("c1k", tmp_path, "--mode", "noack", env={"GAMES": "tests.loadtest.noack_game"})
    s = r["summary"]
    assert s["error_count"] == 0, s["errors"]
    assert s["matches"]["started"] == r["bots"] and s["frames"]["received"] > 0
    assert s["brains"]["generic"] == s["counters"]["welcomes"] > 0  # the game has no brain
    assert s["inputs"]["sent"] > 0 and s["inputs"]["acked"] == 0
    verdict = {t["name"]: t["pass"] for t in r["targets"]}
    assert verdict["inputs acked / inputs awaiting an ack"] is False
    assert verdict["input-to-ack p99 (patch intervals)"] is False
