"""Several real worker processes (gunicorn, 3 workers) and concurrent clients: a player is
never in two tickets or two matches, whatever interleaving the workers produce."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings
from django.db import connection

from engine.auth import derive_node_key, sign_request
from engine.registry import registry
from lobby.live import GunicornServer, Session, database_url
from lobby.matchmaking.models import Match, MatchPlayer, Ticket

pytestmark = [pytest.mark.slow, pytest.mark.timeout(120)]

USERS = 12
ATTEMPTS = 4  # simultaneous POST /api/queue per user


@pytest.fixture
def server(transactional_db):
    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "MATCHER_INTERVAL": "0", "MATCH_MAX_WAIT": "0.3", "MATCH_SIZE": "4",
           "NODE_SECRET": settings.NODE_SECRET, "SEAT_SECRET": settings.SEAT_SECRET}
    with GunicornServer(workers=3, env=env) as srv:
        yield srv


def register_node(srv: GunicornServer, capacity: int = 1000) -> None:
    """A node that runs every registered mode (its heartbeat lists them)."""
    path = "/api/internal/nodes/heartbeat"
    body = json.dumps({"node_id": "n1", "url": "http://127.0.0.1:9", "capacity": capacity,
                       "rooms": 0, "players": 0, "draining": False,
                       "modes": list(registry().modes)}).encode()
    headers = sign_request(derive_node_key(settings.NODE_SECRET, "n1"), node_id="n1", method="POST", path=path,
                           body=body, now=time.time())
    assert Session(srv.url).request("POST", path, raw=body, headers=headers)[0] == 200


def test_concurrent_queue_joins_and_matcher_passes(server):
    register_node(server)
    sessions = [Session(server.url) for _ in range(USERS)]
    with ThreadPoolExecutor(16) as pool:
        users = list(pool.map(lambda s: s.guest()["user_id"], sessions))

    # Every user fires ATTEMPTS joins at once while pollers drive matcher passes.
    start = threading.Barrier(USERS * ATTEMPTS)
    stop = threading.Event()

    def join(s: Session) -> int:
        start.wait(timeout=30)
        return s.request("POST", "/api/queue")[0]

    def poll(s: Session) -> list[int]:
        codes = []
        while not stop.is_set():
            codes.append(s.request("GET", "/api/queue")[0])
        return codes

    with ThreadPoolExecutor(USERS * ATTEMPTS + 4) as pool:
        pollers = [pool.submit(poll, sessions[i]) for i in range(4)]
        joins = [pool.submit(join, s) for s in sessions for _ in range(ATTEMPTS)]
        codes = [f.result(timeout=60) for f in joins]
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            states = [s.request("GET", "/api/queue")[1]["status"] for s in sessions]
            if set(states) == {"matched"}:
                break
            time.sleep(0.2)
        stop.set()
        poll_codes = [c for f in pollers for c in f.result(timeout=30)]

    per_user = Counter(codes)
    assert per_user == {200: USERS, 409: USERS * (ATTEMPTS - 1)}, per_user
    assert set(poll_codes) == {200}
    assert set(states) == {"matched"}

    # Matched players try again, all at once: all refused, still one seat each.
    with ThreadPoolExecutor(USERS * 2) as pool:
        again = list(pool.map(lambda s: s.request("POST", "/api/queue")[0], sessions * 2))
    assert set(again) == {409}

    seats = Counter(MatchPlayer.objects.values_list("user_id", flat=True))
    assert sorted(seats) == sorted(users) and set(seats.values()) == {1}
    assert Ticket.objects.filter(status="waiting").count() == 0
    assert Ticket.objects.filter(status="matched").count() == USERS
    for match in Match.objects.all():
        assert match.seats == match.players.count() and match.seats + match.bots == 4
    tokens = {s.request("GET", "/api/queue")[1]["token"] for s in sessions}
    assert len(tokens) == USERS


def test_concurrent_cancel_and_requeue_keep_one_ticket(server):
    """Join/cancel storms from two threads per user; the node is full (nobody is matched)."""
    register_node(server, capacity=0)
    sessions = [Session(server.url) for _ in range(6)]
    for s in sessions:
        s.guest()

    def storm(s: Session) -> list[int]:
        codes = []
        for _ in range(8):
            for method in ("POST", "DELETE", "POST", "GET"):
                codes.append(s.request(method, "/api/queue")[0])
        return codes

    with ThreadPoolExecutor(12) as pool:
        codes = [c for f in [pool.submit(storm, s) for s in sessions * 2] for c in f.result(60)]
    assert set(codes) <= {200, 409} and 409 in codes
    waiting = Counter(Ticket.objects.filter(status="waiting").values_list("user_id", flat=True))
    assert set(waiting.values()) <= {1}
