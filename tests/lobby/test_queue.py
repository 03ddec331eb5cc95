"""Matchmaking on the database: queue API, matcher passes, nodes, seat tokens, expiry."""

from __future__ import annotations

import time
from unittest import mock

import pytest
from django.conf import settings
from django.db import IntegrityError, transaction

from engine.auth import verify_seat_token
from lobby.matchmaking.models import Match, MatchPlayer, Node, Ticket
from lobby.matchmaking.services import run_pass
from lobby.ratings.models import Rating
from lobby.shared.nodes import PENDING_GRACE

from .conftest import heartbeat


@pytest.fixture
def players(make_api, settings):
    settings.MATCH_SIZE = 4
    settings.MATCH_MAX_WAIT = 10

    def make(n: int, ratings: list[float] | None = None) -> list:
        clients = []
        for i in range(n):
            api = make_api()
            api.user_id = api.guest()["user_id"]
            if ratings:
                Rating.objects.create(user_id=api.user_id, game="arena", rating=ratings[i])
            clients.append(api)
        return clients

    return make


def queue_all(clients: list, mode: str | None = None) -> None:
    for api in clients:
        response = api.post("/api/queue", {"mode": mode} if mode else None)
        assert response.status_code == 200, response.content
        assert response.json()["status"] == "waiting"


def test_join_status_cancel(players, node):
    (api,) = players(1)
    assert api.get("/api/queue").json() == {"status": "none"}
    ticket = api.post("/api/queue").json()
    assert ticket["mode"] == "arena"  # the registry's first mode
    state = api.get("/api/queue").json()
    assert state["status"] == "waiting" and state["ticket_id"] == ticket["ticket_id"]
    assert 0 <= state["waited"] < 5 and "error" not in state and "token" not in state
    assert api.delete("/api/queue").json() == {"status": "cancelled"}
    assert api.delete("/api/queue").json() == {"status": "none"}
    assert api.get("/api/queue").json() == {"status": "none"}
    assert api.post("/api/queue", {"mode": "sprint"}).json()["mode"] == "sprint"


def test_no_double_ticket(players, node):
    (api,) = players(1)
    assert api.post("/api/queue").status_code == 200
    second = api.post("/api/queue")
    assert second.status_code == 409 and second.json()["error"] == "already queued"
    assert Ticket.objects.filter(user_id=api.user_id, status="waiting").count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():  # the database says so too
        Ticket.objects.create(user_id=api.user_id, mode="arena", rating=1200)


def test_four_close_players_get_one_match_with_own_tokens(players, node):
    clients = players(4, [1200, 1230, 1190, 1250])
    queue_all(clients)
    figures = run_pass(force=True)
    assert figures["matches"] == 1 and figures["bots"] == 0
    states = [api.get("/api/queue").json() for api in clients]
    assert {s["status"] for s in states} == {"matched"}
    assert len({s["match_id"] for s in states}) == 1
    assert len({s["token"] for s in states}) == 4
    for api, state in zip(clients, states, strict=True):
        claims = verify_seat_token(settings.SEAT_SECRET, state["token"], node_id=node,
                                   now=time.time())
        assert claims.u == api.user_id and claims.m == state["match_id"]
        assert (claims.seats, claims.bots, claims.role) == (4, 0, "player")
        assert claims.exp <= time.time() + settings.SEAT_TOKEN_TTL + 1
        assert state["node_url"] == "http://127.0.0.1:9/node-1"
    again = clients[0].post("/api/queue")
    assert again.status_code == 409 and again.json()["error"] == "already in a match"
    assert clients[0].delete("/api/queue").status_code == 409


def test_far_ratings_wait_then_widen(players, node, settings):
    settings.MATCH_MAX_WAIT = 100
    clients = players(4, [1000, 1150, 1300, 1450])
    queue_all(clients)
    assert run_pass(force=True)["matches"] == 0
    assert run_pass(time.time() + 8, force=True)["matches"] == 1  # window 100 + 50*8 > 450


def test_lone_player_gets_bots_after_max_wait(players, node):
    (api,) = players(1)
    queue_all([api], mode="sprint")
    assert run_pass(force=True)["matches"] == 0
    figures = run_pass(time.time() + settings.MATCH_MAX_WAIT + 0.5, force=True)
    assert figures["matches"] == 1 and figures["bots"] == 3
    state = api.get("/api/queue").json()
    claims = verify_seat_token(settings.SEAT_SECRET, state["token"], node_id=node, now=time.time())
    assert (claims.seats, claims.bots, claims.mode) == (1, 3, "sprint")


def test_get_queue_runs_the_matcher(players, node, settings):
    settings.MATCHER_INTERVAL = 0
    settings.MATCH_MAX_WAIT = 0
    (api,) = players(1)
    queue_all([api])
    assert api.get("/api/queue").json()["status"] == "matched"


def test_no_live_node_is_a_clear_message(players, client, settings):
    """Queued while a node ran the mode, then it went silent: the ticket waits and the
    queue says why; a node back up gets the match."""
    settings.MATCH_MAX_WAIT = 0
    (api,) = players(1)
    heartbeat(client)
    queue_all([api])
    later = time.time() + settings.NODE_TIMEOUT + 1
    figures = run_pass(later, force=True)
    assert figures["matches"] == 0 and figures["error"] == "no game node available"
    assert not Node.objects.get().alive
    state = api.get("/api/queue").json()
    assert state["status"] == "waiting" and state["code"] == "no_node_for_mode"
    assert state["error"] == "no game node available for this mode"
    page = api.get("/queue/")
    assert page.status_code == 200 and b"No game node available for this mode" in page.content
    heartbeat(client)
    assert run_pass(force=True)["matches"] == 1
    assert api.get("/api/queue").json()["status"] == "matched"


def test_full_servers_are_a_clear_message(players, client, settings):
    settings.MATCH_MAX_WAIT = 0
    heartbeat(client, "full", capacity=8, players=8)
    (api,) = players(1)
    queue_all([api])  # a node runs the mode: the ticket is taken, and waits
    assert run_pass(force=True)["matches"] == 0
    state = api.get("/api/queue").json()
    assert (state["status"], state["code"], state["error"]) == (
        "waiting", "servers_full", "servers full")
    assert b"Servers full" in api.get("/queue/").content
    heartbeat(client, "full", capacity=8, players=4)  # seats freed
    assert run_pass(force=True)["matches"] == 1

def test_least_loaded_live_node_wins(players, client, settings):
    settings.MATCH_SIZE = 2
    heartbeat(client, "busy", capacity=100, players=60)
    heartbeat(client, "idle", capacity=100, players=50)
    heartbeat(client, "draining", capacity=100, players=0, draining=True)
    clients = players(20)
    queue_all(clients)
    assert run_pass(force=True)["matches"] == 10
    per_node = {n.node_id: n.matches.count() for n in Node.objects.all()}
    # idle takes matches until it is as loaded as busy, then they alternate
    assert per_node == {"busy": 3, "idle": 7, "draining": 0}
    idle = Node.objects.get(node_id="idle")
    assert (idle.pending, idle.pending_rooms) == (14, 7)
    heartbeat(client, "idle", capacity=100, players=64, rooms=7)  # resets the pending counts
    idle.refresh_from_db()
    assert (idle.pending, idle.pending_rooms, idle.players) == (0, 0, 64)


def counts(seated: int, rooms: int, boot: str = "boot-1") -> dict:
    """A heartbeat's cumulative counters (docs/protocol.md)."""
    return {"boot": boot, "seated_total": seated, "rooms_total": rooms}


def test_seats_placed_before_a_heartbeat_stay_pending_until_seated(players, client, settings):
    settings.MATCH_SIZE = 4
    settings.MATCH_MAX_WAIT = 10
    heartbeat(client, "n", capacity=6, extra=counts(0, 0))
    queue_all(players(4))
    assert run_pass(force=True)["matches"] == 1  # 4 seats pending on n
    # a heartbeat sent before those players joined: its counts do not include them
    heartbeat(client, "n", capacity=6, extra=counts(0, 0))
    n = Node.objects.get()
    assert (n.pending, n.pending_rooms) == (4, 1)
    later = players(4)
    queue_all(later)
    assert run_pass(force=True)["matches"] == 0  # 4 + 4 > 6: not placed over the capacity
    # three of them seated, the room open: those come off the pending counts
    heartbeat(client, "n", capacity=6, players=3, rooms=1, extra=counts(3, 1))
    n.refresh_from_db()
    assert (n.pending, n.pending_rooms) == (1, 0)
    assert run_pass(force=True)["matches"] == 0  # 3 + 1 + 4 > 6
    # a restarted node (another boot) starts from its own counts
    heartbeat(client, "n", capacity=6, players=0, extra=counts(0, 0, boot="boot-2"))
    n.refresh_from_db()
    assert (n.pending, n.pending_rooms) == (0, 0)
    assert run_pass(force=True)["matches"] == 1


def test_pending_seats_expire_with_their_tokens(players, client, settings):
    settings.MATCH_SIZE = 4
    now = time.time()
    heartbeat(client, "n", capacity=6, extra=counts(0, 0))
    queue_all(players(4))
    assert run_pass(force=True)["matches"] == 1
    heartbeat(client, "n", capacity=6, extra=counts(0, 0))
    assert Node.objects.get().pending == 4
    # nobody used those tokens: forgotten once they have expired, within two windows
    window = settings.SEAT_TOKEN_TTL + PENDING_GRACE
    for later in (now + window - 1, now + window + 1, now + 2 * window + 2):
        with mock.patch("time.time", return_value=later):
            assert heartbeat(client, "n", capacity=6, extra=counts(0, 0),
                             now=later).status_code == 200
        # kept for one whole window at least
        assert Node.objects.get().pending == (4 if later < now + 2 * window else 0)


def test_a_heartbeat_without_counters_resets_pending(players, client, settings):
    settings.MATCH_SIZE = 4
    heartbeat(client, "n", capacity=6)
    queue_all(players(4))
    assert run_pass(force=True)["matches"] == 1
    heartbeat(client, "n", capacity=6)  # an older node: its counts are taken as the truth
    assert (Node.objects.get().pending, Node.objects.get().pending_rooms) == (0, 0)


def test_full_nodes_get_nothing(players, client, settings):
    settings.MATCH_SIZE = 4
    settings.MATCH_MAX_WAIT = 0
    heartbeat(client, "small", capacity=4, players=1)
    clients = players(6)
    queue_all(clients)
    figures = run_pass(force=True)
    # 6 close players: a group of 4 (1 + 4 > 5: no fit), then the overdue pair fits
    assert figures["matches"] == 1 and figures["unplaced"] == 1
    assert Match.objects.get().seats == 2
    assert Ticket.objects.filter(status="waiting").count() == 4


def test_node_max_rooms_is_respected(players, client, settings):
    settings.MATCH_SIZE = 1
    heartbeat(client, "rooms", capacity=100, rooms=1, max_rooms=3)
    clients = players(4)
    queue_all(clients)
    assert run_pass(force=True)["matches"] == 2
    assert Node.objects.get().max_rooms == 3


def test_silent_node_drops_and_its_matches_abort(players, node, client, settings):
    clients = players(4)
    queue_all(clients)
    run_pass(force=True)
    match = Match.objects.get()
    figures = run_pass(time.time() + settings.NODE_TIMEOUT + 1, force=True)
    assert figures["nodes_dropped"] == 1 and figures["matches_aborted"] == 1
    match.refresh_from_db()
    assert match.status == "aborted" and match.reason == "node lost"
    assert not Node.objects.get().alive
    assert not MatchPlayer.objects.filter(active=True).exists()
    assert clients[0].get("/api/queue").json()["status"] == "none"
    refused = clients[0].post("/api/queue")  # free to queue again, once a node runs the mode
    assert refused.status_code == 409 and refused.json()["code"] == "no_node_for_mode"
    heartbeat(client)
    assert clients[0].post("/api/queue").status_code == 200


def test_unreported_match_expires(players, node, settings):
    settings.MATCH_MAX_DURATION = 60
    clients = players(4)
    queue_all(clients)
    run_pass(force=True)
    Match.objects.update(created_at="2000-01-01T00:00:00Z")
    assert run_pass(force=True)["matches_aborted"] == 1
    assert Match.objects.get().reason == "never reported"


def test_one_active_match_per_user_is_a_constraint(players, node):
    (api,) = players(1)
    first = Match.objects.create(match_id="a", mode="arena", seats=1)
    second = Match.objects.create(match_id="b", mode="arena", seats=1)
    MatchPlayer.objects.create(match=first, user_id=api.user_id)
    with pytest.raises(IntegrityError), transaction.atomic():
        MatchPlayer.objects.create(match=second, user_id=api.user_id)


def test_queue_pages_without_js(players, node, settings):
    (api,) = players(1)
    home = api.get("/")
    assert b"PLAY" in home.content
    response = api.http.post("/queue/join/", headers={"X-CSRFToken": api.csrf})
    assert response.status_code == 302 and response["Location"] == "/queue/"
    page = api.get("/queue/")
    assert b'http-equiv="refresh"' in page.content and b"Finding opponents" in page.content
    run_pass(time.time() + settings.MATCH_MAX_WAIT + 1, force=True)
    page = api.get("/queue/")
    assert page.status_code == 302 and page["Location"] == "/game/"
    game = api.get("/game/")
    assert b'<canvas id="arena"></canvas>' in game.content
    assert b'<script src="/static/client.js"></script>' in game.content
    assert b'Arena.start({api: "/api", matchUrl: "/matches/"})' in game.content


def test_run_matcher_command_matches(players, node, settings):
    from io import StringIO

    from django.core.management import call_command

    settings.MATCH_MAX_WAIT = 0
    clients = players(2)
    queue_all(clients)
    out = StringIO()
    call_command("run_matcher", "--once", stdout=out)
    assert "'matches': 1" in out.getvalue()
    assert {c.get("/api/queue").json()["status"] for c in clients} == {"matched"}
