"""Free guests: a limit per address (issue 11, item 5), sessions that expire when idle,
and housekeeping that removes expired sessions and never-played guests (item 13).

Real Django: the test client for the limit and the sessions, `manage.py housekeeping`,
and gunicorn (the lobby running its own housekeeping, as the embedded default does).
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from lobby.live import GunicornServer, database_url
from lobby.matchmaking.models import Ticket

from .conftest import ApiClient

User = get_user_model()


@pytest.fixture
def limited(settings):
    settings.GUEST_ALLOWLIST = []  # the suite exempts loopback (tests/settings.py)
    settings.GUEST_MAX_PER_ADDRESS, settings.GUEST_WINDOW = 3, 600


def guest(address: str) -> tuple[ApiClient, object]:
    api = ApiClient(REMOTE_ADDR=address)
    return api, api.post("/api/guest")


def metric(name: str) -> int:
    """A series of the lobby's GET /metrics (summed over workers), 0 when absent."""
    text = Client().get("/metrics").content.decode()
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " "))


def test_guest_creation_is_limited_per_address(db, limited):
    before = metric('arena_lobby_refused_total{limit="guests_per_address"}')
    for _ in range(3):
        assert guest("10.2.0.1")[1].status_code == 200
    api, refused = guest("10.2.0.1")
    assert refused.status_code == 429 and refused["Retry-After"] == "600"
    assert "too many new guests" in refused.json()["error"]
    assert api.get("/api/me").status_code == 401  # no guest was made
    # the "Play as guest" form says so too
    page = Client(REMOTE_ADDR="10.2.0.1").post("/guest/")
    assert page.status_code == 429 and b"Too many new guests" in page.content
    # another address is not affected, and a session that has its guest gets it back
    other, ok = guest("10.2.0.2")
    assert ok.status_code == 200
    other.csrf = other.http.cookies["csrftoken"].value  # login() rotated it
    assert other.post("/api/guest").json() == ok.json()
    assert User.objects.filter(profile__guest=True).count() == 4
    assert metric('arena_lobby_refused_total{limit="guests_per_address"}') == before + 2


def test_guest_window_passes(db, limited):
    from lobby.accounts.models import LoginFailure

    for _ in range(3):
        guest("10.2.1.1")
    assert guest("10.2.1.1")[1].status_code == 429
    LoginFailure.objects.update(at=timezone.now() - timedelta(seconds=601))
    assert guest("10.2.1.1")[1].status_code == 200


def test_allowlisted_addresses_get_guests_freely(db, limited, settings):
    settings.GUEST_ALLOWLIST = ["10.3.0.0/24", "::1"]
    for _ in range(6):
        assert guest("10.3.0.9")[1].status_code == 200
    for _ in range(3):
        guest("10.3.1.9")
    assert guest("10.3.1.9")[1].status_code == 429


def test_guest_sessions_expire_sooner_and_claimed_ones_do_not(db, settings):
    settings.GUEST_SESSION_AGE = 3600
    api = ApiClient()
    api.guest()
    cookie = api.http.cookies["sessionid"]
    assert int(cookie["max-age"]) == 3600
    row = Session.objects.get(session_key=cookie.value)
    assert row.expire_date - timezone.now() < timedelta(seconds=3601)
    response = api.http.post("/accounts/claim/", {
        "username": "keeper", "password1": "ample-Grizzly-42", "password2": "ample-Grizzly-42",
        "csrfmiddlewaretoken": api.http.cookies["csrftoken"].value})
    assert response.status_code == 302
    row = Session.objects.get(session_key=api.http.cookies["sessionid"].value)
    assert row.expire_date - timezone.now() > timedelta(days=13)  # an account's two weeks


def test_an_active_guest_session_is_kept_alive(db, settings):
    from lobby.accounts.middleware import GUEST_SEEN

    settings.GUEST_SESSION_AGE = 3600
    api = ApiClient()
    api.guest()
    key = api.http.cookies["sessionid"].value
    session = api.http.session
    session[GUEST_SEEN] -= 3600  # last moved an hour ago
    session.save()
    Session.objects.filter(session_key=key).update(
        expire_date=timezone.now() + timedelta(seconds=60))
    assert api.get("/api/me").status_code == 200
    row = Session.objects.get(session_key=key)
    assert row.expire_date - timezone.now() > timedelta(seconds=3500)


def make_leftovers(age: timedelta) -> dict[str, int]:
    """Expired sessions, old never-played guests, and what must stay."""
    old = timezone.now() - age
    Session.objects.create(session_key="x" * 32, session_data="", expire_date=old)
    live = Session.objects.create(session_key="y" * 32, session_data="",
                                  expire_date=timezone.now() + timedelta(days=1))
    ids = {}
    for name in ("guest-old1", "guest-old2", "guest-queued", "guest-new", "claimed"):
        user = User(username=name)
        user._arena_guest = name.startswith("guest-")
        user.save()
        ids[name] = user.id
    User.objects.filter(username__in=["guest-old1", "guest-old2", "guest-queued", "claimed"]
                        ).update(date_joined=old, last_login=old)
    Ticket.objects.create(user_id=ids["guest-queued"], mode="arena", rating=1200)
    ids["live_session"] = live.pk
    return ids


def test_housekeeping_command_removes_what_nobody_needs(db, settings):
    settings.GUEST_UNPLAYED_MAX_AGE = 3600
    before = metric('arena_lobby_housekeeping_removed_total{kind="guests"}')
    ids = make_leftovers(timedelta(hours=2))
    out = []
    call_command("housekeeping", stdout=type("W", (), {"write": lambda s, t: out.append(t)})())
    assert "sessions=1" in out[0] and "guests=2" in out[0]
    left = set(User.objects.values_list("username", flat=True))
    assert left == {"guest-queued", "guest-new", "claimed"}
    assert list(Session.objects.values_list("pk", flat=True)) == [ids["live_session"]]
    assert metric('arena_lobby_housekeeping_removed_total{kind="guests"}') == before + 2


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_the_lobby_runs_housekeeping_by_itself(transactional_db):
    make_leftovers(timedelta(days=3))  # older than the default GUEST_UNPLAYED_MAX_AGE
    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "HOUSEKEEPING_INTERVAL": "0.5"}
    with GunicornServer(workers=1, env=env) as srv:
        from lobby.live import Session as HttpSession

        http = HttpSession(srv.url)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            http.request("GET", "/api/csrf")  # requests are what tick the schedule
            if not User.objects.filter(username__startswith="guest-old").exists() and \
                    not Session.objects.filter(session_key="x" * 32).exists():
                break
            time.sleep(0.2)
        assert not User.objects.filter(username__startswith="guest-old").exists()
        assert not Session.objects.filter(session_key="x" * 32).exists()
        assert User.objects.filter(username="guest-queued").exists()


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_refusals_are_counted_over_every_worker(transactional_db):
    """/metrics of a 2-worker gunicorn sums what each worker refused."""
    from lobby.live import Session as HttpSession

    env = {"DATABASE_URL": database_url(connection.settings_dict), "DB_CONN_MAX_AGE": "0",
           "GUEST_ALLOWLIST": "", "GUEST_MAX_PER_ADDRESS": "2"}
    series = 'arena_lobby_refused_total{limit="guests_per_address"}'
    with GunicornServer(workers=2, threads=2, env=env) as srv:
        statuses = []
        for _ in range(6):
            http = HttpSession(srv.url)
            http.request("GET", "/api/csrf")
            statuses.append(http.request("POST", "/api/guest",
                                         headers={"X-CSRFToken": http.cookies["csrftoken"]})[0])
        assert sorted(statuses) == [200, 200, 429, 429, 429, 429]
        deadline, seen = time.monotonic() + 30, 0
        while time.monotonic() < deadline:  # each worker adds its count after a request
            text = HttpSession(srv.url).request("GET", "/metrics")[1]
            seen = sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                       if line.startswith(series + " "))
            if seen == 4:
                break
            time.sleep(0.3)
        assert seen == 4


def test_guest_limit_and_counters_on_redis(db, limited, settings):
    """The same limit and counters with REDIS_URL: a sorted set per address under the
    `guest` namespace, the totals in one hash."""
    import os

    import redis

    from lobby import shared
    from tests.services import need

    url = os.environ.get("REDIS_TEST_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(url, socket_timeout=1, socket_connect_timeout=1).ping()
        reason = ""
    except (redis.RedisError, OSError) as exc:
        reason = f"Redis at {url} unreachable: {exc}"
    need(not reason, reason)
    prefix = f"hardening:{os.getpid()}:{time.monotonic_ns()}:"
    settings.REDIS_URL, settings.REDIS_PREFIX = url, prefix
    r = redis.Redis.from_url(url)
    try:
        assert shared.state().backend == "redis"
        series = 'arena_lobby_refused_total{limit="guests_per_address"}'
        before = metric(series)  # (also adds what earlier tests counted in this process)
        for _ in range(3):
            assert guest("10.4.0.1")[1].status_code == 200
        assert guest("10.4.0.1")[1].status_code == 429
        assert guest("10.4.0.2")[1].status_code == 200
        assert r.zcard(f"{prefix}guest:ip:10.4.0.1") == 3
        assert metric(series) == before + 1
        assert int(r.hget(f"{prefix}counters", series)) == before + 1
    finally:
        keys = list(r.scan_iter(match=prefix + "*"))
        if keys:
            r.delete(*keys)
        r.close()
        shared.reset()
