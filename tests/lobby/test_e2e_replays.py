"""Replays end to end (issue 14): a real `python -m game_server` node records a match and
its outbox uploads the replay to a real lobby (gunicorn) before the result; the lobby,
with REPLAY_REQUIRED on, rates the match only once `verify_replays` (scale mode's
verifier) has re-derived the result; the frames file is then served over plain HTTP."""

from __future__ import annotations

import asyncio
import json
import time
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


def test_the_embedded_lobby_verifies_by_itself(replay_dir, transactional_db, tmp_path,
                                               django_user_model):
    """The embedded default: uvicorn with its lifespan (no REDIS_URL) runs the verifier
    task; a node's upload and result are verified and rated with no command run."""
    from django.db import connection

    from engine.auth import derive_node_key, sign_request
    from lobby.live import database_url
    from lobby.matchmaking.models import Match, MatchPlayer, Node
    from lobby.ratings.models import Rating
    from lobby.realtime.server import UvicornServer

    from .test_replays import play

    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "REDIS_URL": "", "REPLAY_VERIFY_INTERVAL": "60",   # only a wake-up is quick
           "NODE_SECRET": settings.NODE_SECRET, "SEAT_SECRET": settings.SEAT_SECRET}

    def node_post(url: str, path: str, data: bytes) -> int:
        headers = sign_request(derive_node_key(settings.NODE_SECRET, "n1"), node_id="n1",
                               method="POST", path=path, body=data, now=time.time())
        return Session(url).request("POST", path, raw=data, headers=headers)[0]

    node = Node.objects.create(node_id="n1", url="http://127.0.0.1:9", alive=True)
    users = [django_user_model.objects.create_user(f"e{i}") for i in range(2)]
    match = Match.objects.create(match_id="emb", game="arena", mode="sprint", seats=2,
                                 bots=2, node=node)
    for u in users:
        MatchPlayer.objects.create(match=match, user=u)
    body, data = play("emb", [u.id for u in users])
    body["node_id"] = "n1"
    with UvicornServer(env=env, log_path=tmp_path / "uvicorn.log") as lobby:
        assert node_post(lobby.url, "/api/internal/replays/emb", data) == 200
        assert node_post(lobby.url, "/api/internal/results", json.dumps(body).encode()) == 200
        row = wait_for(lambda: MatchReplay.objects.filter(pk="emb").exclude(
            verdict="pending").first(), 30, "the lobby's own verification")
    assert row.verdict == "verified" and row.rated
    assert all(Rating.objects.get(user=u, game="arena").games == 1 for u in users)
