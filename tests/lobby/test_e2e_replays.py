"""Replays end to end (issue 14): a real `python -m game_server` node records a match and
its outbox uploads the replay to a real lobby (gunicorn) before the result; the lobby,
with REPLAY_REQUIRED on, rates the match only once `verify_replays` (scale mode's
verifier) has re-derived the result; the frames file is then served over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import urllib.request

import pytest
from django.conf import settings
from django.core.management import call_command
from django.test import override_settings

from engine.frames import load_frames
from lobby.live import Session
from lobby.replays.models import MatchReplay

from .test_e2e_node import lobby_and_node, play_all, wait_for  # noqa: F401, F811 - the fixture

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]


@pytest.fixture
def replay_dir(tmp_path, monkeypatch):
    """The lobby process and this one store replays in the same tmp dir; the lobby defers
    ratings until verification."""
    location = tmp_path / "replays"
    monkeypatch.setenv("REPLAY_STORAGE_OPTIONS", json.dumps({"location": str(location)}))
    monkeypatch.setenv("REPLAY_REQUIRED", "1")
    stores = {**settings.STORAGES, "replays": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(location)}}}
    with override_settings(STORAGES=stores, REPLAY_REQUIRED=True):
        yield location


def test_a_real_match_is_verified_then_rated_and_watchable(replay_dir, lobby_and_node):  # noqa: F811
    lobby, node_url = lobby_and_node
    players = [Session(lobby.url) for _ in range(2)]
    for p in players:
        p.guest()
    wait_for(lambda: any(m["mode"] == "sprint" and m["available"] for m in
                         players[0].request("GET", "/api/modes")[1]["modes"]), 20, "the node")
    for p in players:
        assert p.request("POST", "/api/queue", {"mode": "sprint"})[0] == 200

    def matched():
        states = [p.request("GET", "/api/queue")[1] for p in players]
        return states if all(s["status"] == "matched" for s in states) else None

    states = wait_for(matched, 30, "both players matched")
    match_id = states[0]["match_id"]
    [(_, end), _] = asyncio.run(play_all(node_url, [s["token"] for s in states]))

    row = wait_for(lambda: MatchReplay.objects.filter(pk=match_id, result_at__isnull=False)
                   .exclude(sha256="").first(), 30, "the replay and the result in the lobby")
    assert row.verdict == "pending"
    me = [p.request("GET", "/api/me")[1] for p in players]
    assert all(m["games"] == 0 for m in me)                # not rated before verification
    call_command("verify_replays")
    row.refresh_from_db()
    assert row.verdict == "verified", row.detail
    me = [p.request("GET", "/api/me")[1] for p in players]
    assert all(m["games"] == 1 for m in me)

    with urllib.request.urlopen(f"{lobby.url}/matches/{match_id}/replay.frames") as resp:
        assert resp.status == 200 and "max-age" in resp.headers["Cache-Control"]
        doc = load_frames(resp.read())
    assert doc["match_id"] == match_id and doc["results"] == end[2]   # the final scoreboard
