"""Replays in the lobby (issue 14): a node's signed upload, verification of the posted
result against its replay (ratings only once verified), disputes, frames for watching,
storage through Django's storage API (a tmp dir here), retention."""

from __future__ import annotations

import asyncio
import hashlib
import time
from datetime import timedelta

import pytest
from django.conf import settings
from django.core.management import call_command
from django.db import close_old_connections, connection
from django.test import override_settings
from django.utils import timezone

from engine.auth import derive_node_key, sign_request
from engine.frames import load_frames
from engine.recording import Recorder
from engine.registry import registry
from engine.replay import result_players
from lobby.accounts import counters
from lobby.matchmaking.models import Match, MatchPlayer, Node
from lobby.ratings.models import Rating
from lobby.replays import services, verifier
from lobby.replays.models import MatchReplay

from .conftest import heartbeat, signed_post

RESULTS = "/api/internal/results"


def upload_path(match_id: str) -> str:
    return f"/api/internal/replays/{match_id}"


def upload(client, match_id: str, data: bytes, *, node_id: str = "node-1"):
    """POST a replay file as a node does: raw bytes, signed."""
    path = upload_path(match_id)
    key = derive_node_key(settings.NODE_SECRET, node_id)
    headers = sign_request(key, node_id=node_id, method="POST", path=path, body=data,
                           now=time.time())
    return client.post(path, data=data, content_type="application/octet-stream",
                       headers=headers)


def play(match_id: str, user_ids: list[int], *, seed: int = 7, max_bytes: int | None = None,
         abort_at: int | None = None, mode: str = "sprint", bots: int = 2,
         time_limit: int | None = None) -> tuple[dict, bytes]:
    """A match of `mode` (humans sending inputs across their input spec, fill bots)
    recorded as a node's room records it: (the node's result body, the replay file)."""
    gdef, _ = registry().mode(mode)
    extra = {"time_limit": time_limit} if time_limit else {}
    config = gdef.config(mode, reconnect_window=2, **extra)
    kwargs = {"max_bytes": max_bytes} if max_bytes else {}
    game = Recorder(gdef.game(config, seed), gdef, mode, seed, config=config,
                    match_id=match_id, **kwargs)
    for i in range(bots):
        game.join(0, f"Bot {i + 1}", bot=True)
    pids = [game.join(u, f"p{u}") for u in user_ids]
    seq = 0
    while not game.over and (abort_at is None or game.tick < abort_at):
        seq += 1
        for k, pid in enumerate(pids):
            values = tuple(f.lo + (seq * (7 + k) + 3 * i) % (f.hi - f.lo + 1)
                           for i, f in enumerate(gdef.inputs))
            game.submit(pid, seq, gdef.clamp(values))
        game.step()
    status, reason = ("finished", game.end_reason) if game.over else ("aborted", "aborted")
    data = game.finish(status, reason)
    body = {"match_id": match_id, "node_id": "node-1", "game": gdef.name, "mode": mode,
            "status": status, "reason": reason, "ticks": game.tick,
            "players": result_players(gdef, game.results()),
            "replay": {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest(),
                       "truncated": game.truncated}}
    return body, data


@pytest.fixture
def storage(tmp_path):
    stores = {**settings.STORAGES, "replays": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "replays")}}}
    with override_settings(STORAGES=stores, REPLAY_REQUIRED=True):
        yield tmp_path / "replays"


@pytest.fixture
def match(db, client, django_user_model, storage):
    heartbeat(client)
    users = [django_user_model.objects.create_user(f"u{i}") for i in range(2)]
    m = Match.objects.create(match_id="r1", game="arena", mode="sprint", seats=2, bots=2,
                             node=Node.objects.get(node_id="node-1"))
    for u in users:
        MatchPlayer.objects.create(match=m, user=u)
    m.users = users
    return m


def ratings(match: Match) -> list[tuple[float, int]]:
    return [next(((r.rating, r.games) for r in Rating.objects.filter(user=u, game="arena")),
                 (settings.RATING_START, 0)) for u in match.users]


def test_the_rating_change_of_a_verified_match_is_pushed_to_its_players(
        client, match, storage, django_capture_on_commit_callbacks):
    """Ratings wait for verification, so the result event sent when the result lands has
    no rating change; the verifier's commit sends it again with the change."""
    from lobby.realtime.events import user_channel
    from lobby.shared.bus import bus

    async def results(user_id: int) -> list[dict]:
        sub = await bus().subscribe({user_channel(user_id): "0-0"})
        try:
            return [e.data for e in list(sub.queue._queue) if e.data["type"] == "result"]
        finally:
            await sub.close()

    body, data = play("r1", [u.id for u in match.users])
    with django_capture_on_commit_callbacks(execute=True):
        upload(client, "r1", data)
        signed_post(client, RESULTS, body)
    first = asyncio.run(results(match.users[0].id))
    assert first and first[-1]["match_id"] == "r1" and first[-1]["change"] is None
    with django_capture_on_commit_callbacks(execute=True):
        assert services.verify_match("r1") == "verified"
    last = asyncio.run(results(match.users[0].id))[-1]
    assert last["match_id"] == "r1" and last["rating_after"] is not None
    assert last["change"] == pytest.approx(last["rating_after"] - last["rating_before"], abs=0.1)


def test_true_result_is_verified_and_rated_once(client, match, storage):
    body, data = play("r1", [u.id for u in match.users])
    assert upload(client, "r1", data).json() == {"ok": True, "duplicate": False}
    assert signed_post(client, RESULTS, body).json() == {"ok": True, "duplicate": False}
    row = MatchReplay.objects.get(pk="r1")
    assert (row.verdict, row.size, row.rated) == ("pending", len(data), False)
    assert ratings(match) == [(settings.RATING_START, 0)] * 2     # pending: no change yet
    assert MatchPlayer.objects.filter(match=match, rating_after__isnull=False).count() == 0
    page = client.get("/matches/r1/").content.decode()
    assert "pending" in page and "rating changes appear once verified" in page

    call_command("verify_replays")                 # outside the request
    row.refresh_from_db()
    assert (row.verdict, row.truncated, row.rated, row.detail) == ("verified", False, True, "")
    assert row.frames_size > 0 and (storage / row.frames.name).is_file()
    after = ratings(match)
    assert all(games == 1 for _, games in after) and sum(r for r, _ in after) == pytest.approx(
        2 * settings.RATING_START)
    assert MatchPlayer.objects.filter(match=match, rating_after__isnull=False).count() == 2
    # the node retries both (a lost answer): nothing moves again
    assert upload(client, "r1", data).json() == {"ok": True, "duplicate": True}
    assert signed_post(client, RESULTS, body).json() == {"ok": True, "duplicate": True}
    assert services.verify_pending() == 0
    call_command("verify_replays", match="r1")     # an explicit re-verification
    assert ratings(match) == after
    seat = MatchPlayer.objects.get(match=match, user=match.users[0])
    assert seat.rating_after == after[0][0] and seat.points is not None
    assert "verified" in client.get("/matches/r1/").content.decode()


@pytest.mark.parametrize("mode", list(registry().modes))
def test_every_registered_mode_verified_and_a_forgery_disputed(client, db, storage,
                                                               django_user_model, mode):
    """Each mode of each registered game: its true result verified and rated, a forged
    one (a human's score changed) disputed and unrated."""
    heartbeat(client)
    gdef, info = registry().mode(mode)
    bots = 1 if info.max_players > 2 else 0
    for match_id, forge in (("true", False), ("forged", True)):
        users = [django_user_model.objects.create_user(f"{match_id}{i}") for i in range(2)]
        m = Match.objects.create(match_id=match_id, game=gdef.name, mode=mode, seats=2,
                                 bots=bots, node=Node.objects.get(node_id="node-1"))
        for u in users:
            MatchPlayer.objects.create(match=m, user=u)
        body, data = play(match_id, [u.id for u in users], mode=mode, bots=bots, time_limit=15)
        if forge:
            [human, *_] = [p for p in body["players"] if not p["bot"]]
            human["score"] += 1
        upload(client, match_id, data)
        signed_post(client, RESULTS, body)
        assert services.verify_pending() == 1
        row = MatchReplay.objects.get(pk=match_id)
        assert row.verdict == ("disputed" if forge else "verified"), row.detail
        rated = Rating.objects.filter(user__in=users, game=gdef.name, games=1).count()
        assert rated == (0 if forge else 2)


def test_forged_result_is_disputed_and_changes_no_rating(client, match, admin_client):
    body, data = play("r1", [u.id for u in match.users])
    forged = {**body, "players": [dict(p) for p in body["players"]]}
    humans = [p for p in forged["players"] if not p["bot"]]
    humans[-1]["score"] += 50                      # the loser "won"
    forged["players"] = sorted(forged["players"], key=lambda p: -p["score"])
    for i, p in enumerate(forged["players"]):
        p["placement"] = i + 1
    assert upload(client, "r1", data).status_code == 200
    assert signed_post(client, RESULTS, forged).status_code == 200
    assert services.verify_pending() == 1
    row = MatchReplay.objects.get(pk="r1")
    assert row.verdict == "disputed" and "players[" in row.detail and not row.rated
    assert ratings(match) == [(settings.RATING_START, 0)] * 2
    page = client.get("/matches/r1/").content.decode()
    assert "disputed" in page and "no rating change" in page
    change_link = "/admin/matchmaking/match/r1/change/"   # not "r1": a CSRF token may hold it
    listed = admin_client.get("/admin/matchmaking/match/?replay__verdict=disputed")
    assert listed.status_code == 200 and change_link in listed.content.decode()
    assert change_link not in admin_client.get(
        "/admin/matchmaking/match/?replay__verdict=verified").content.decode()
    detail = admin_client.get("/admin/matchmaking/match/r1/change/").content.decode()
    assert "disputed" in detail and str(len(data)) in detail   # the replay's size, verdict


def test_result_without_replay_is_missing_and_unrated(client, match):
    body, _ = play("r1", [u.id for u in match.users])
    assert signed_post(client, RESULTS, body).status_code == 200
    assert MatchReplay.objects.get(pk="r1").verdict == "missing"
    assert services.verify_pending() == 0 and ratings(match)[0] == (settings.RATING_START, 0)


def test_replay_after_the_result_is_verified(client, match):
    body, data = play("r1", [u.id for u in match.users])
    signed_post(client, RESULTS, body)
    assert upload(client, "r1", data).status_code == 200
    assert services.verify_pending() == 1
    assert MatchReplay.objects.get(pk="r1").verdict == "verified"


def test_truncated_replay_is_unverifiable(client, match):
    body, data = play("r1", [u.id for u in match.users], max_bytes=2048)
    assert body["replay"]["truncated"]
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    services.verify_pending()
    row = MatchReplay.objects.get(pk="r1")
    assert (row.verdict, row.truncated, row.rated) == ("unverifiable", True, False)
    assert ratings(match)[0] == (settings.RATING_START, 0)
    assert load_frames(client.get("/matches/r1/replay.frames").getvalue())["truncated"]


@pytest.mark.parametrize("bad", ["garbage", "other match", "other seed"])
def test_a_replay_that_is_not_this_matchs_is_disputed(client, match, bad):
    body, data = play("r1", [u.id for u in match.users])
    data = {"garbage": b"\x78\x9c not a replay",
            "other match": play("zz", [u.id for u in match.users])[1],
            "other seed": play("r1", [u.id for u in match.users], seed=8)[1]}[bad]
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    services.verify_pending()
    row = MatchReplay.objects.get(pk="r1")
    assert row.verdict == "disputed" and row.detail and ratings(match)[0][1] == 0


def test_aborted_match_is_verified_without_rating(client, match):
    body, data = play("r1", [u.id for u in match.users], abort_at=100)
    assert body["status"] == "aborted"
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    services.verify_pending()
    assert MatchReplay.objects.get(pk="r1").verdict == "verified"
    assert ratings(match)[0] == (settings.RATING_START, 0)


def test_upload_is_checked(client, match, django_user_model):
    _, data = play("r1", [u.id for u in match.users])
    assert client.post(upload_path("r1"), data=data,
                       content_type="application/octet-stream").status_code == 403  # unsigned
    heartbeat(client, "node-2")
    assert upload(client, "r1", data, node_id="node-2").status_code == 403  # not its match
    assert upload(client, "nope", data).status_code == 404
    assert client.get(upload_path("r1")).status_code == 405
    path = upload_path("r1")
    refused = counters.series("arena_lobby_refused_total", limit="replay_upload_bytes")
    counters.flush()
    before = counters.totals().get(refused, 0)
    big = client.post(path, data=b"x", content_type="application/octet-stream",
                      CONTENT_LENGTH=str(services.MAX_UPLOAD_BYTES + 1))
    assert big.status_code == 413
    counters.flush()
    assert counters.totals()[refused] == before + 1   # counted, at /metrics
    assert upload(client, "r1", data).status_code == 200
    assert upload(client, "r1", data + b"!").status_code == 409   # first one wins
    assert MatchReplay.objects.get(pk="r1").size == len(data)


def test_frames_are_served_with_caching_headers(client, match, storage):
    body, data = play("r1", [u.id for u in match.users])
    assert client.get("/matches/r1/replay.frames").status_code == 404   # none yet
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    services.verify_pending()
    response = client.get("/matches/r1/replay.frames")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert "max-age" in response["Cache-Control"] and response["ETag"]
    doc = load_frames(response.getvalue())
    assert doc["match_id"] == "r1" and doc["end"] == ["finished", body["reason"]]
    match.refresh_from_db()
    assert [[r[1], r[3], r[4]] for r in doc["results"]] == [
        [p["user_id"], p["score"], p["placement"]] for p in match.result]
    again = client.get("/matches/r1/replay.frames", headers={"If-None-Match": response["ETag"]})
    assert again.status_code == 304
    raw = client.get("/matches/r1/replay.replay")
    assert raw.status_code == 200 and raw.getvalue() == data
    assert client.get("/matches/nope/replay.frames").status_code == 404


def test_retention_removes_the_files_and_keeps_the_verdict(client, match, storage):
    body, data = play("r1", [u.id for u in match.users])
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    services.verify_pending()
    row = MatchReplay.objects.get(pk="r1")
    files = [storage / row.file.name, storage / row.frames.name]
    assert all(f.is_file() for f in files)
    with override_settings(REPLAY_RETENTION_DAYS=30):
        assert services.purge_expired() == 0                          # too young
        MatchReplay.objects.filter(pk="r1").update(
            uploaded_at=timezone.now() - timedelta(days=31))
        call_command("purge_replays")
    row.refresh_from_db()
    assert row.verdict == "verified" and row.purged_at and not row.file and not row.frames
    assert not any(f.exists() for f in files)
    assert client.get("/matches/r1/replay.frames").status_code == 404
    assert upload(client, "r1", data).json()["duplicate"]   # a late retry stores nothing


@pytest.mark.django_db(transaction=True)
def test_the_background_verifier_runs_by_itself(client, django_user_model, storage):
    """The embedded lobby's verifier (started by the ASGI lifespan): woken by the upload
    and the result, it verifies in a worker thread, with no command run."""
    heartbeat(client)
    users = [django_user_model.objects.create_user(f"b{i}") for i in range(2)]
    m = Match.objects.create(match_id="bg", game="arena", mode="sprint", seats=2, bots=2,
                             node=Node.objects.get(node_id="node-1"))
    for u in users:
        MatchPlayer.objects.create(match=m, user=u)
    body, data = play("bg", [u.id for u in users])

    def in_thread(fn, *args):
        try:
            return fn(*args)
        finally:
            connection.close()   # the worker thread's own connection

    async def scenario() -> str:
        await verifier.start()
        try:
            assert verifier.running()
            await asyncio.to_thread(in_thread, upload, client, "bg", data)
            await asyncio.to_thread(in_thread, signed_post, client, RESULTS, body)
            deadline = time.monotonic() + 30
            while True:
                verdict = await asyncio.to_thread(
                    in_thread, lambda: MatchReplay.objects.get(pk="bg").verdict)
                if verdict != "pending" or time.monotonic() > deadline:
                    return verdict
                await asyncio.sleep(0.05)
        finally:
            await verifier.stop()

    assert asyncio.run(scenario()) == "verified"
    close_old_connections()
    assert all(Rating.objects.get(user=u, game="arena").games == 1 for u in users)
