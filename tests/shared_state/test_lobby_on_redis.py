"""The lobby with `REDIS_URL` set, through its HTTP API: real Django, real Redis, and
gunicorn workers sharing one Redis registry; Redis unreachable answers 503 and loses no
ticket."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from django.conf import settings as django_settings
from django.db import connection
from django.test import Client

from engine.auth import derive_node_key, sign_request, verify_seat_token
from engine.registry import registry
from game_server.shared_state import RedisPresence
from game_server.shared_state import connect as connect_async
from lobby.live import GunicornServer, Session, database_url
from lobby.matchmaking.models import Match, MatchPlayer, Ticket
from lobby.matchmaking.services import run_pass
from lobby.shared import state

from .conftest import free_port

HEARTBEAT = "/api/internal/nodes/heartbeat"


@pytest.fixture
def on_redis(settings, redis_url, prefix):
    """The lobby's shared state on Redis under this test's prefix."""
    settings.REDIS_URL, settings.REDIS_PREFIX = redis_url, prefix
    assert state().backend == "redis"
    return prefix


def beat(client: Client, node_id: str, *, capacity: int = 100, players: int = 0,
         nonce: str | None = None):
    body = json.dumps({"node_id": node_id, "url": f"http://127.0.0.1:9/{node_id}",
                       "capacity": capacity, "rooms": 0, "players": players,
                       "draining": False, "modes": list(registry().modes)}).encode()
    headers = sign_request(derive_node_key(django_settings.NODE_SECRET, node_id),
                           node_id=node_id, method="POST",
                           path=HEARTBEAT, body=body, now=time.time(), nonce=nonce)
    return client.post(HEARTBEAT, data=body, content_type="application/json", headers=headers)


def guest(client: Client) -> int:
    client.get("/api/csrf")
    return post(client, "/api/guest").json()["user_id"]


def post(client: Client, path: str):
    return client.post(path, data=b"{}", content_type="application/json",
                       headers={"X-CSRFToken": client.cookies["csrftoken"].value})


def test_queue_match_and_presence_on_redis(db, on_redis):
    node_client = Client()
    assert beat(node_client, "busy", players=60).status_code == 200
    assert beat(node_client, "idle", players=0).status_code == 200
    replay = beat(node_client, "idle", nonce="same-nonce")
    assert replay.status_code == 200
    assert beat(node_client, "idle", nonce="same-nonce").status_code == 403  # Redis nonce
    players = [Client() for _ in range(4)]
    ids = [guest(c) for c in players]
    for c in players:
        assert post(c, "/api/queue").status_code == 200
    assert run_pass(force=True)["matches"] == 1
    answers = [c.get("/api/queue").json() for c in players]
    assert {a["status"] for a in answers} == {"matched"}
    for a in answers:  # tokens for the least-loaded node, valid there only
        verify_seat_token(django_settings.SEAT_SECRET, a["token"], node_id="idle", now=time.time())
    assert Match.objects.get().node.node_id == "idle"

    async def node_publishes() -> None:
        r = connect_async(django_settings.REDIS_URL)
        await RedisPresence(r, on_redis).publish(
            "idle", {ids[0]: (answers[0]["match_id"], True)}, ttl=10)
        await r.aclose()

    assert players[0].get("/api/presence").json() == {"presence": None, "nodes": {}}
    asyncio.run(node_publishes())  # the node says who is connected
    assert players[0].get("/api/presence").json() == {
        "presence": {"node_id": "idle", "match_id": answers[0]["match_id"], "connected": True},
        "nodes": {"idle": 1}}
    assert players[1].get("/api/presence").json()["presence"] is None


def test_presence_on_the_database_is_the_active_seat(db, settings):
    settings.REDIS_URL = ""
    assert beat(Client(), "n1").status_code == 200
    players = [Client() for _ in range(4)]
    for c in players:
        guest(c)
        post(c, "/api/queue")
    assert players[0].get("/api/presence").json() == {"presence": None, "nodes": {}}
    run_pass(force=True)
    match_id = Match.objects.get().match_id
    assert players[0].get("/api/presence").json() == {
        "presence": {"node_id": "n1", "match_id": match_id, "connected": None},
        "nodes": {"n1": 4}}


def test_login_rate_limit_on_redis(db, on_redis, django_user_model):
    django_user_model.objects.create_user("fred", password="right-Horse-91")
    for _ in range(django_settings.LOGIN_MAX_FAILURES):  # one (account, address) pair
        response = Client(REMOTE_ADDR="10.0.0.1").post(
            "/accounts/login/", {"username": "fred", "password": "nope"})
        assert response.status_code == 200
    blocked = Client(REMOTE_ADDR="10.0.0.1").post(
        "/accounts/login/", {"username": "FRED", "password": "right-Horse-91"})
    assert blocked.status_code == 429
    owner = Client(REMOTE_ADDR="10.0.1.1").post(  # the owner, elsewhere, is not locked out
        "/accounts/login/", {"username": "fred", "password": "right-Horse-91"})
    assert owner.status_code == 302


def test_silent_node_dropped_and_its_match_aborted(db, on_redis):
    assert beat(Client(), "n1").status_code == 200
    players = [Client() for _ in range(4)]
    for c in players:
        guest(c)
        post(c, "/api/queue")
    assert run_pass(force=True)["matches"] == 1
    figures = run_pass(time.time() + django_settings.NODE_TIMEOUT + 1, force=True)
    assert figures["nodes_dropped"] == 1 and figures["matches_aborted"] == 1
    assert Match.objects.get().status == Match.ABORTED
    assert post(players[0], "/api/queue").status_code == 200  # free to queue again


def test_redis_unreachable_is_503_and_no_ticket_is_lost(db, settings, redis_url, prefix):
    settings.REDIS_URL, settings.REDIS_PREFIX = f"redis://127.0.0.1:{free_port()}/0", prefix
    player = Client()
    guest(player)  # the database alone: works
    assert post(player, "/api/queue").status_code == 200  # the ticket is a row: kept
    down = player.get("/api/queue")
    assert down.status_code == 503 and "retry" in down.json()["error"]
    assert down["Retry-After"] == "2"
    assert beat(Client(), "n1").status_code == 503  # the node retries at its next beat
    login = Client().post("/accounts/login/", {"username": "x", "password": "y"})
    assert login.status_code == 503 and b"Redis" in login.content
    assert Ticket.objects.filter(status=Ticket.WAITING).count() == 1

    settings.REDIS_URL = redis_url  # Redis is back
    assert beat(Client(), "n1").status_code == 200
    assert player.get("/api/queue").json()["status"] == "waiting"
    run_pass(time.time() + django_settings.MATCH_MAX_WAIT + 1, force=True)
    assert player.get("/api/queue").json()["status"] == "matched"


# --- several worker processes on one Redis ---------------------------------------------------

NODES = {"a": 8, "b": 12}  # capacities: 2 and 3 full matches of 4
PLAYERS = 28


@pytest.fixture
def workers(transactional_db, redis_url, prefix):
    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "REDIS_URL": redis_url, "REDIS_PREFIX": prefix, "MATCHER_INTERVAL": "0",
           "MATCH_MAX_WAIT": "0.2", "MATCH_SIZE": "4",
           "NODE_SECRET": django_settings.NODE_SECRET, "SEAT_SECRET": django_settings.SEAT_SECRET}
    with GunicornServer(workers=2, env=env) as srv:
        yield srv


@pytest.mark.timeout(90)
def test_workers_share_one_registry_and_never_overfill(workers, redis_url, prefix):
    for node_id, capacity in NODES.items():
        body = json.dumps({"node_id": node_id, "url": f"http://127.0.0.1:9/{node_id}",
                           "capacity": capacity, "rooms": 0, "players": 0,
                           "draining": False, "modes": list(registry().modes)}).encode()
        headers = sign_request(derive_node_key(django_settings.NODE_SECRET, node_id),
                               node_id=node_id, method="POST",
                               path=HEARTBEAT, body=body, now=time.time())
        assert Session(workers.url).request("POST", HEARTBEAT, raw=body, headers=headers)[0] == 200
    sessions = [Session(workers.url) for _ in range(PLAYERS)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda s: s.guest(), sessions))
        assert set(pool.map(lambda s: s.request("POST", "/api/queue")[0], sessions)) == {200}
    stop = threading.Event()

    def poll(s: Session) -> set[str]:  # every poll may run a pass, in either worker
        seen = set()
        while not stop.is_set():
            status, body = s.request("GET", "/api/queue")
            assert status == 200
            seen.add(body["status"])
        return seen

    with ThreadPoolExecutor(8) as pool:
        futures = [pool.submit(poll, s) for s in sessions[:8]]
        deadline = time.monotonic() + 30
        while (MatchPlayer.objects.count() < sum(NODES.values())
               and time.monotonic() < deadline):
            time.sleep(0.05)
        # more passes with the nodes full: `<prefix>matcher:last` (each pass's time) moves
        # on twice after the last seat
        r = redis.Redis.from_url(redis_url, decode_responses=True)
        last = time.time()
        for _ in range(2):
            while float(r.get(f"{prefix}matcher:last") or 0) <= last:
                assert time.monotonic() < deadline + 30, "no matcher pass after the nodes filled"
                time.sleep(0.02)
            last = float(r.get(f"{prefix}matcher:last"))
        r.close()
        stop.set()
        for f in futures:
            f.result(timeout=30)
    seats = Counter(MatchPlayer.objects.filter(active=True)
                    .values_list("match__node__node_id", flat=True))
    assert seats == Counter(NODES)  # each node exactly full, never over
    per_user = Counter(MatchPlayer.objects.values_list("user_id", flat=True))
    assert max(per_user.values()) == 1
    assert Ticket.objects.filter(status=Ticket.WAITING).count() == PLAYERS - sum(NODES.values())
