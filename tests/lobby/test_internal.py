"""Signed node endpoints: heartbeat and results (signatures, replay, idempotency, checks)."""

from __future__ import annotations

import json
import time

import pytest
from django.conf import settings
from django.test import Client

from engine.auth import derive_node_key, sign_request
from lobby.accounts.models import Profile
from lobby.matchmaking.models import Match, MatchPlayer, Node
from lobby.ratings.models import Rating, ResultReport

from .conftest import heartbeat, player_row, result_body, signed_post

NODE_1_KEY = derive_node_key(settings.NODE_SECRET, "node-1")  # node-1's own signing key

RESULTS = "/api/internal/results"


def test_heartbeat_registers_and_updates(client, db):
    assert heartbeat(client, capacity=50, rooms=3, players=9).json() == {"ok": True}
    node = Node.objects.get(node_id="node-1")
    assert (node.capacity, node.rooms, node.players, node.alive) == (50, 3, 9, True)
    heartbeat(client, rooms=4, draining=True, url="https://n1.example.com/")
    node.refresh_from_db()
    assert (node.rooms, node.draining, node.url) == (4, True, "https://n1.example.com")
    assert Node.objects.count() == 1


def test_unsigned_request_is_refused(client, db):
    body = json.dumps({"node_id": "node-1", "url": "http://x", "capacity": 1, "rooms": 0,
                       "players": 0, "draining": False})
    response = client.post("/api/internal/nodes/heartbeat", data=body,
                           content_type="application/json")
    assert response.status_code == 403 and "forbidden" in response.json()["error"]
    assert not Node.objects.exists()


def test_forged_signature_is_refused(client, db):
    assert heartbeat(client, secret="not-the-secret").status_code == 403
    # a valid signature over another body
    body = json.dumps({"node_id": "node-1"}).encode()
    headers = sign_request(NODE_1_KEY, node_id="node-1", method="POST",
                           path="/api/internal/nodes/heartbeat", body=body, now=time.time())
    tampered = json.dumps({"node_id": "node-1", "url": "http://evil", "capacity": 9,
                           "rooms": 0, "players": 0}).encode()
    response = client.post("/api/internal/nodes/heartbeat", data=tampered,
                           content_type="application/json", headers=headers)
    assert response.status_code == 403
    # signed for another path
    response = signed_post(client, RESULTS, {"node_id": "node-1"})
    assert response.status_code in (400, 404)  # accepted signature, the body is the problem
    headers = sign_request(NODE_1_KEY, node_id="node-1", method="POST", path=RESULTS,
                           body=body, now=time.time())
    response = client.post("/api/internal/nodes/heartbeat", data=body,
                           content_type="application/json", headers=headers)
    assert response.status_code == 403
    assert not Node.objects.exists()


def test_stale_and_replayed_requests_are_refused(client, db, nonce):
    assert heartbeat(client, now=time.time() - 120).status_code == 403
    assert heartbeat(client, now=time.time() + 120).status_code == 403
    assert heartbeat(client, nonce=nonce).status_code == 200
    replay = heartbeat(client, nonce=nonce)
    assert replay.status_code == 403 and "replayed" in replay.json()["error"]


def test_signed_header_must_match_body_node(client, db):
    body = {"node_id": "node-2", "url": "http://x", "capacity": 1, "rooms": 0, "players": 0,
            "draining": False}
    response = signed_post(client, "/api/internal/nodes/heartbeat", body, node_id="node-1")
    assert response.status_code == 403


@pytest.mark.parametrize("patch, field", [
    ({"url": "ftp://x"}, "url"), ({"capacity": -1}, "capacity"), ({"rooms": "3"}, "rooms"),
    ({"draining": "no"}, "draining"), ({"node_id": "bad id!"}, "node_id"),
    # the counters come all three or none
    ({"boot": "bad boot!", "seated_total": 0, "rooms_total": 0}, "boot"),
    ({"boot": "b" * 33, "seated_total": 0, "rooms_total": 0}, "boot"),
    ({"boot": "b1", "seated_total": -1, "rooms_total": 0}, "seated_total"),
    ({"boot": "b1", "seated_total": True, "rooms_total": 0}, "seated_total"),
    ({"boot": "b1", "seated_total": 0, "rooms_total": 2**31}, "rooms_total"),
    ({"boot": "b1", "seated_total": 3}, "rooms_total"), ({"seated_total": 3}, "boot")])
def test_heartbeat_validates(client, db, patch, field):
    body = {"node_id": "node-1", "url": "http://x", "capacity": 1, "rooms": 0, "players": 0,
            "draining": False, **patch}
    response = signed_post(client, "/api/internal/nodes/heartbeat", body,
                           node_id=body["node_id"])
    assert response.status_code == 400 and field in response.json()["error"]
    assert not Node.objects.exists()


def test_bad_json_body_is_400(client, db):
    response = signed_post(client, "/api/internal/nodes/heartbeat", None, raw=b"{oops")
    assert response.status_code == 400 and "JSON" in response.json()["error"]


# --- results ---------------------------------------------------------------------------

@pytest.fixture
def match(db, client, django_user_model):
    """A running match on node-1 with three humans (ratings 1200) and one bot seat."""
    heartbeat(client)
    users = [django_user_model.objects.create_user(f"p{i}") for i in range(3)]
    m = Match.objects.create(match_id="m1", game="arena", mode="arena", seats=3, bots=1,
                             node=Node.objects.get(node_id="node-1"))
    for u in users:
        MatchPlayer.objects.create(match=m, user=u)
    m.users = users
    return m


def rows(match: Match) -> list[dict]:
    a, b, c = (u.id for u in match.users)
    return [player_row(a, 1, score=10, kills=4, deaths=1), player_row(0, 2, bot=True),
            player_row(b, 3, score=5, kills=2, deaths=3), player_row(c, 4, kills=0, deaths=4)]


def test_result_updates_ratings_history_once(client, match):
    body = result_body("m1", rows(match))
    first = signed_post(client, RESULTS, body)
    assert first.json() == {"ok": True, "duplicate": False}
    second = signed_post(client, RESULTS, body)  # a retry: new nonce, same match
    assert second.json() == {"ok": True, "duplicate": True}
    match.refresh_from_db()
    assert match.status == "finished" and match.reason == "score" and len(match.result) == 4
    assert match.result[0]["stats"] == {"kills": 4, "deaths": 1}
    ratings = [Rating.objects.get(user=u, game="arena").rating for u in match.users]
    assert ratings[0] > 1200 > ratings[2] and ratings[1] == pytest.approx(1200)
    assert sum(ratings) == pytest.approx(3600)
    seat = MatchPlayer.objects.get(user=match.users[0])
    assert (seat.score, seat.stats, seat.placement, seat.points) == (
        10, {"kills": 4, "deaths": 1}, 1, 4)
    assert seat.rating_before == 1200 and seat.rating_after == ratings[0] and not seat.active
    first = Rating.objects.get(user=match.users[0], game="arena")
    assert (first.games, first.wins) == (1, 1)
    profile = Profile.objects.get(user=match.users[0])  # totals over every game
    assert (profile.games, profile.wins) == (1, 1)
    assert ResultReport.objects.get().duplicates == 1
    assert MatchPlayer.objects.get(user=match.users[0]).stats == {"kills": 4, "deaths": 1}


def test_ratings_are_per_game(client, match):
    """A match of another game moves that game's ratings only."""
    a, b, _ = match.users
    Rating.objects.create(user=a, game="arena", rating=1500, games=3, wins=2)
    other = Match.objects.create(match_id="t1", game="tag", mode="tag", seats=2,
                                 node=Node.objects.get(node_id="node-1"))
    MatchPlayer.objects.filter(match=match).delete()  # free them for the other match
    for u in (a, b):
        MatchPlayer.objects.create(match=other, user=u)
    body = result_body("t1", [player_row(a.id, 1, score=3, tags=5), player_row(b.id, 2, tags=1)],
                       game="tag")
    assert signed_post(client, RESULTS, body).json() == {"ok": True, "duplicate": False}
    arena = Rating.objects.get(user=a, game="arena")
    assert (arena.rating, arena.games, arena.wins) == (1500, 3, 2)
    tag_a, tag_b = (Rating.objects.get(user=u, game="tag") for u in (a, b))
    assert tag_a.rating == pytest.approx(1216) and tag_b.rating == pytest.approx(1184)
    assert (tag_a.games, tag_a.wins, tag_b.games, tag_b.wins) == (1, 1, 1, 0)
    assert MatchPlayer.objects.get(match=other, user=a).stats == {"tags": 5}


def test_result_game_must_be_the_matchs(client, match):
    response = signed_post(client, RESULTS, result_body("m1", rows(match), game="tag"))
    assert response.status_code == 400 and "game" in response.json()["error"]
    wrong_mode = {**result_body("m1", rows(match)), "mode": "duel"}
    response = signed_post(client, RESULTS, wrong_mode)
    assert response.status_code == 400 and "mode" in response.json()["error"]
    assert not ResultReport.objects.exists()
    # a node that does not name the game is taken at the match's word
    assert signed_post(client, RESULTS, result_body("m1", rows(match), game=None)
                       ).json()["duplicate"] is False


def test_aborted_result_changes_no_rating(client, match):
    response = signed_post(client, RESULTS, result_body("m1", rows(match), status="aborted"))
    assert response.json()["duplicate"] is False
    assert not Rating.objects.exists()
    assert Profile.objects.get(user=match.users[0]).games == 0
    match.refresh_from_db()
    assert match.status == "aborted"
    assert MatchPlayer.objects.get(user=match.users[0]).stats == {"kills": 4, "deaths": 1}
    assert not MatchPlayer.objects.filter(active=True).exists()


def test_result_players_must_belong_to_the_match(client, match, django_user_model):
    stranger = django_user_model.objects.create_user("stranger")
    body = result_body("m1", [*rows(match), player_row(stranger.id, 5)])
    response = signed_post(client, RESULTS, body)
    assert response.status_code == 400 and "does not belong" in response.json()["error"]
    match.refresh_from_db()
    assert match.status == "active" and not ResultReport.objects.exists()
    assert signed_post(client, RESULTS, result_body("m1", rows(match))).json()["duplicate"] is False


def test_result_from_another_node_or_unknown_match(client, match):
    heartbeat(client, "node-2")
    other = signed_post(client, RESULTS, result_body("m1", rows(match), node_id="node-2"),
                        node_id="node-2")
    assert other.status_code == 403
    assert signed_post(client, RESULTS, result_body("nope", rows(match))).status_code == 404
    spoof = signed_post(client, RESULTS, result_body("m1", rows(match), node_id="node-1"),
                        node_id="node-2")
    assert spoof.status_code == 403


@pytest.mark.parametrize("patch", [
    {"status": "won"}, {"players": "x"}, {"players": [{"user_id": 1}]},
    {"players": [{**player_row(1, 1), "placement": 0}]},
    {"players": [player_row(1, 1), player_row(1, 2)]},
    {"players": [{**player_row(1, 1), "user_id": 0}]}, {"match_id": ""}, {"ticks": -5},
    {"players": [{**player_row(1, 1), "stats": [1, 2]}]},
    {"players": [{**player_row(1, 1), "stats": {"kills": "4"}}]},
    {"players": [{**player_row(1, 1), "stats": {"kills": True}}]},
    {"players": [{**player_row(1, 1), "stats": {"x" * 33: 1}}]},
    {"players": [{**player_row(1, 1), "stats": {f"c{i}": 1 for i in range(33)}}]},
    {"game": "x" * 17}, {"game": 5},
])
def test_result_validation(client, match, patch):
    response = signed_post(client, RESULTS, {**result_body("m1", rows(match)), **patch})
    assert response.status_code == 400 and response.json()["error"]


def test_result_after_lobby_aborted_is_a_duplicate(client, match):
    Match.objects.filter(pk="m1").update(status="aborted")
    response = signed_post(client, RESULTS, result_body("m1", rows(match)))
    assert response.json()["duplicate"] is True
    assert not Rating.objects.exists()


def test_get_on_internal_endpoint_is_405(db):
    assert Client().get(RESULTS).status_code == 405


@pytest.mark.parametrize("path", ["/api/internal/nodes/heartbeat", RESULTS])
def test_both_endpoints_refuse_unsigned_forged_stale_replayed(client, match, path, nonce):
    body = (result_body("m1", rows(match)) if path == RESULTS else
            {"node_id": "node-1", "url": "http://x", "capacity": 1, "rooms": 0, "players": 0,
             "draining": False})
    raw = json.dumps(body).encode()
    assert client.post(path, data=raw, content_type="application/json").status_code == 403
    assert signed_post(client, path, body, secret="forged").status_code == 403
    assert signed_post(client, path, body, now=time.time() - 61).status_code == 403
    assert signed_post(client, path, body, nonce=nonce).status_code == 200
    assert signed_post(client, path, body, nonce=nonce).status_code == 403
