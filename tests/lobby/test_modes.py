"""Modes from the game registry: the modes API, refusal of a mode no live node runs, a
match only on a node that runs its mode, match size per mode, mode names, startup checks.
Nodes register through real signed heartbeats."""

from __future__ import annotations

import itertools
import os
import time

import pytest
from django.core.exceptions import ImproperlyConfigured

from engine.auth import verify_seat_token
from engine.registry import registry
from lobby import games
from lobby.matchmaking.models import Match, Node, Ticket
from lobby.matchmaking.services import run_pass
from lobby.ratings.models import Rating
from lobby.shared import state

from .conftest import heartbeat, signed_post

_prefixes = itertools.count()


@pytest.fixture
def guests(make_api, settings):
    settings.MATCH_SIZE = 4
    settings.MATCH_MAX_WAIT = 10

    def make(n: int) -> list:
        out = []
        for _ in range(n):
            api = make_api()
            api.user_id = api.guest()["user_id"]
            out.append(api)
        return out

    return make


@pytest.fixture(params=["database", "redis"])
def registry_backend(request, settings):
    """The node registry on the database, then on Redis (a key prefix of this test)."""
    if request.param == "redis":
        from tests.services import need
        from tests.shared_state.conftest import REDIS_TEST_URL, delete_prefix, redis_reachable

        reason = redis_reachable()
        need(reason is None, reason or "")
        prefix = f"lobbymodes:{os.getpid()}:{next(_prefixes)}:"
        settings.REDIS_URL, settings.REDIS_PREFIX = REDIS_TEST_URL, prefix
        assert state().backend == "redis"
        yield "redis"
        delete_prefix(REDIS_TEST_URL, prefix)
    else:
        yield "database"


def queue(api, mode: str | None = None):
    return api.post("/api/queue", {"mode": mode} if mode else None)


def test_modes_api_lists_the_registry(api, client, settings):
    settings.MATCH_SIZE = 4
    body = api.get("/api/modes").json()
    reg = registry()
    assert body["default"] == next(iter(reg.modes))
    assert [m["mode"] for m in body["modes"]] == list(reg.modes)
    for m in body["modes"]:
        game, mode = reg.mode(m["mode"])
        assert (m["game"], m["game_title"], m["title"]) == (game.name, game.title, mode.title)
        assert (m["min_players"], m["max_players"]) == (mode.min_players, mode.max_players)
        assert m["size"] == max(mode.min_players, min(mode.max_players, 4))
        assert m["available"] is False  # no node yet
    heartbeat(client, modes=["duel", "tag"])
    available = {m["mode"] for m in api.get("/api/modes").json()["modes"] if m["available"]}
    assert available == {"duel", "tag"}


def test_a_mode_no_live_node_runs_is_refused_at_queue_time(guests, client):
    (api,) = guests(1)
    refused = queue(api, "tag")
    assert refused.status_code == 409  # no node at all
    assert refused.json()["code"] == "no_node_for_mode" and "tag" in refused.json()["error"]
    heartbeat(client, "sprinter", modes=["sprint"])
    heartbeat(client, "draining", modes=["tag"], draining=True)
    refused = queue(api, "tag")  # the only node running it is draining
    assert refused.status_code == 409 and refused.json()["code"] == "no_node_for_mode"
    assert not Ticket.objects.exists()
    assert queue(api, "sprint").status_code == 200
    # the form version says it too
    api.delete("/api/queue")
    page = api.http.post("/queue/join/", {"mode": "tag"}, headers={"X-CSRFToken": api.csrf},
                         follow=True)
    assert b"no game node available for mode tag" in page.content


def test_a_heartbeat_without_modes_runs_nothing(guests, client):
    body = {"node_id": "old", "url": "http://127.0.0.1:9/old", "capacity": 100, "rooms": 0,
            "players": 0, "draining": False}
    assert signed_post(client, "/api/internal/nodes/heartbeat", body, node_id="old"
                       ).status_code == 200
    assert Node.objects.get().modes == []
    (api,) = guests(1)
    assert queue(api).status_code == 409


@pytest.mark.parametrize("modes", ["arena", [1], ["A"], ["x" * 17], ["ok", "bad mode"],
                                   [f"m{i}" for i in range(257)]])
def test_heartbeat_modes_are_validated(client, db, modes):
    response = heartbeat(client, modes=modes)
    assert response.status_code == 400 and "modes" in response.json()["error"]
    assert not Node.objects.exists()


def test_matches_go_only_to_live_nodes_running_their_mode(guests, client, settings,
                                                          registry_backend):
    settings.MATCH_MAX_WAIT = 0
    heartbeat(client, "sprint-only", modes=["sprint"], capacity=100, players=0)
    heartbeat(client, "both", modes=["arena", "sprint"], capacity=100, players=90)
    heartbeat(client, "tag-node", modes=["tag"], capacity=100, players=0)
    a1, a2, s1, t1 = guests(4)
    for api, mode in ((a1, "arena"), (a2, "arena"), (s1, "sprint"), (t1, "tag")):
        assert queue(api, mode).status_code == 200
    assert run_pass(force=True)["matches"] == 3
    placed = {m.mode: m.node.node_id for m in Match.objects.select_related("node")}
    # arena: only "both" runs it, though it is the most loaded; the others: least loaded
    assert placed == {"arena": "both", "sprint": "sprint-only", "tag": "tag-node"}
    assert {m.game for m in Match.objects.all()} == {"arena", "tag"}
    for api in (a1, s1, t1):
        state = api.get("/api/queue").json()
        claims = verify_seat_token(settings.SEAT_SECRET, state["token"],
                                   node_id=placed[state["mode"]], now=time.time())
        assert claims.mode == state["mode"]


def test_a_waiting_ticket_whose_mode_lost_its_node_waits_and_says_so(guests, client, settings,
                                                                     registry_backend):
    settings.MATCH_MAX_WAIT = 0
    heartbeat(client, "n1", modes=["tag"])
    (api,) = guests(1)
    assert queue(api, "tag").status_code == 200
    heartbeat(client, "n1", modes=["arena"])  # the node no longer runs tag
    figures = run_pass(force=True)
    assert figures["matches"] == 0 and figures["unplaced"] == 1
    state = api.get("/api/queue").json()
    assert state["status"] == "waiting" and state["code"] == "no_node_for_mode"
    heartbeat(client, "n2", modes=["tag"])
    assert run_pass(force=True)["matches"] == 1
    assert Match.objects.get().node.node_id == "n2"


@pytest.mark.parametrize("cap, expected", [
    (0, {"arena": 16, "duel": 2, "tag": 8, "tag-duel": 2}),   # each mode's max_players
    (4, {"arena": 4, "duel": 2, "tag": 4, "tag-duel": 2}),    # MATCH_SIZE caps it
    (16, {"arena": 16, "duel": 2, "tag": 8, "tag-duel": 2}),  # a cap over a game's max: its max
    (1, {"arena": 2, "duel": 2, "tag": 2, "tag-duel": 2}),    # never below min_players
])
def test_match_size_per_mode_from_the_game(guests, node, settings, cap, expected):
    settings.MATCH_SIZE = cap
    clients = guests(len(expected))
    for api, mode in zip(clients, expected, strict=True):
        assert queue(api, mode).status_code == 200
    figures = run_pass(time.time() + settings.MATCH_MAX_WAIT + 1, force=True)
    assert figures["matches"] == len(expected)
    for api, (mode, size) in zip(clients, expected.items(), strict=True):
        state = api.get("/api/queue").json()
        assert (state["mode"], state["seats"], state["bots"]) == (mode, 1, size - 1)
        claims = verify_seat_token(settings.SEAT_SECRET, state["token"], node_id=node,
                                   now=time.time())
        assert (claims.seats, claims.bots) == (1, size - 1)
        _, declared = registry().mode(mode)
        assert declared.min_players <= size <= declared.max_players  # the node seats them


def test_a_full_mode_starts_without_waiting(guests, node, settings):
    settings.MATCH_SIZE = 0
    clients = guests(2)
    for api in clients:
        assert queue(api, "duel").status_code == 200
    figures = run_pass(force=True)  # nobody waited: two is a full duel
    assert figures["matches"] == 1 and figures["bots"] == 0


@pytest.mark.parametrize("mode, code", [
    ("x" * 17, "bad_mode"), ("y" * 300, "bad_mode"), (7, "bad_mode"), (["arena"], "bad_mode"),
    ("no-such-mode", "unknown_mode"), ("ARENA", "unknown_mode"),
])
def test_bad_mode_names_are_a_clean_400(guests, node, mode, code):
    """Longer than the model field: 400 before any query (it was a 500 on PostgreSQL)."""
    (api,) = guests(1)
    response = api.post("/api/queue", {"mode": mode})
    assert response.status_code == 400 and response.json()["code"] == code
    assert "mode" in response.json()["error"]
    assert not Ticket.objects.exists()


def test_the_longest_mode_name_fits_the_tables():
    assert all(len(name) <= 16 for name in registry().modes)
    for model in (Ticket, Match):
        assert model._meta.get_field("mode").max_length == 16


def test_ticket_rating_is_the_rating_in_the_modes_game(guests, node):
    a, b = guests(2)
    Rating.objects.create(user_id=a.user_id, game="arena", rating=1500)
    assert queue(a, "sprint").status_code == 200  # sprint is an Arena mode
    assert queue(b, "tag").status_code == 200
    assert Ticket.objects.get(user_id=a.user_id).rating == 1500
    assert Ticket.objects.get(user_id=b.user_id).rating == 1200  # no tag rating yet
    a.delete("/api/queue")
    assert queue(a, "tag").status_code == 200
    assert Ticket.objects.get(user_id=a.user_id, status="waiting").rating == 1200


def test_match_modes_filter_and_default(guests, node, settings, api):
    settings.MATCH_MODES = ["tag", "sprint"]
    settings.MATCH_MODE = ""
    assert list(games.offered()) == ["tag", "sprint"]
    body = api.get("/api/modes").json()
    assert body["default"] == "tag" and [m["mode"] for m in body["modes"]] == ["tag", "sprint"]
    (player,) = guests(1)
    assert queue(player, "arena").json()["code"] == "unknown_mode"
    assert queue(player).json()["mode"] == "tag"


@pytest.mark.parametrize("patch, fragment", [
    ({"MATCH_MODES": ["arena", "nope"]}, "MATCH_MODES names 'nope'"),
    ({"MATCH_MODE": "nope"}, "MATCH_MODE 'nope' is not an offered mode"),
    ({"MATCH_MODES": ["tag"], "MATCH_MODE": "arena"}, "MATCH_MODE 'arena'"),
    ({"MATCH_SIZE": -1}, "MATCH_SIZE"),
])
def test_startup_check_names_the_bad_setting(settings, patch, fragment):
    for key, value in patch.items():
        setattr(settings, key, value)
    with pytest.raises(ImproperlyConfigured, match=fragment) as info:
        games.check()
    if "MATCH_MODES" in fragment:
        assert "registered modes: arena" in str(info.value)


def test_queue_page_offers_the_registry_modes(guests, client, settings):
    heartbeat(client, modes=["arena", "tag"])
    (api,) = guests(1)
    page = api.get("/queue/").content.decode()
    for _, mode in registry().modes.values():
        assert f'value="{mode.name}"' in page and mode.title in page
    assert "(no node now)" in page  # e.g. duel: no node runs it
    assert '<optgroup label="Tag">' in page


def test_a_ticket_of_a_mode_no_longer_offered_is_cancelled(guests, node, settings):
    (api,) = guests(1)
    assert queue(api, "duel").status_code == 200
    settings.MATCH_MODES = ["arena", "tag"]  # e.g. a restart with another MATCH_MODES
    assert run_pass(force=True)["matches"] == 0
    assert Ticket.objects.get().status == "cancelled"
    assert api.get("/api/queue").json() == {"status": "none"}
