"""Pages render with their content; leaderboards paginate (page and JSON)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from lobby.accounts.models import Profile
from lobby.matchmaking.models import Match, MatchPlayer
from lobby.ratings.models import Rating
from tests.services import need

User = get_user_model()


@pytest.fixture
def ranked(db):
    """45 players with rated games; the first 3 also won matches this week."""
    users = User.objects.bulk_create([User(username=f"r{i:02d}") for i in range(45)])
    Profile.objects.bulk_create([Profile(user=u, games=1) for u in users])
    Rating.objects.bulk_create(
        [Rating(user=u, game="arena", rating=2000 - i, games=1) for i, u in enumerate(users)])
    now = timezone.now()
    for i, u in enumerate(users[:3]):
        m = Match.objects.create(match_id=f"w{i}", game="arena", mode="arena", seats=1, bots=3,
                                 status="finished", ended_at=now,
                                 result=[{"user_id": u.id, "name": u.username, "score": 9,
                                          "stats": {"kills": 3, "deaths": 1}, "placement": 1,
                                          "bot": False},
                                         {"user_id": 0, "name": "bot-1", "score": 1,
                                          "stats": {"kills": 0, "deaths": 3}, "placement": 2,
                                          "bot": True}])
        MatchPlayer.objects.create(match=m, user=u, active=False, placement=1, score=9,
                                   stats={"kills": 3, "deaths": 1}, points=4 - i,
                                   rating_before=1990, rating_after=2000)
    old = Match.objects.create(match_id="old", game="arena", mode="arena", seats=1,
                               status="finished", ended_at=now - timedelta(days=8))
    MatchPlayer.objects.create(match=old, user=users[10], active=False, placement=1, points=50)
    return users


def test_all_time_leaderboard_paginates(ranked):
    page1 = Client().get("/api/leaderboard").json()
    assert (page1["count"], page1["pages"], page1["page"]) == (45, 3, 1)
    assert [r["rank"] for r in page1["rows"]] == list(range(1, 21))
    assert page1["rows"][0]["username"] == "r00" and page1["rows"][0]["rating"] == 2000
    page3 = Client().get("/api/leaderboard", {"page": 3}).json()
    assert [r["username"] for r in page3["rows"]] == [f"r{i}" for i in range(40, 45)]
    html = Client().get("/leaderboard/", {"page": 2})
    assert html.status_code == 200 and b"r20" in html.content and b"r19" not in html.content
    assert b"Page 2 of 3" in html.content


def test_week_leaderboard_counts_this_week_only(ranked):
    week = Client().get("/api/leaderboard", {"board": "week"}).json()
    assert [(r["username"], r["points"], r["wins"]) for r in week["rows"]] == [
        ("r00", 4, 1), ("r01", 3, 1), ("r02", 2, 1)]
    html = Client().get("/leaderboard/", {"board": "week"})
    assert b"This week" in html.content and b"r01" in html.content and b"r10" not in html.content


def test_match_detail_and_profile(ranked):
    page = Client().get("/matches/w0/")
    assert page.status_code == 200
    assert b"r00" in page.content and b"bot-1" in page.content and b"+10.0" in page.content
    assert Client().get("/matches/nope/").status_code == 404
    profile = Client().get("/players/r00/")
    assert profile.status_code == 200 and b"#1" in profile.content and b"2000" in profile.content
    assert b"w0" in profile.content
    assert Client().get("/players/nobody/").status_code == 404


def test_static_pages_render(db):
    http = Client()
    home = http.get("/")
    assert b"PLAY AS GUEST" in home.content and b"Sign up" in home.content
    assert b"/static/lobby/lobby.css" in home.content
    assert b"csrfmiddlewaretoken" in http.get("/accounts/login/").content
    assert http.get("/accounts/signup/").status_code == 200
    assert http.get("/queue/").status_code == 302  # sign in first
    assert http.get("/game/").status_code == 200
    assert http.get("/leaderboard/").status_code == 200
    assert http.get("/static/lobby/lobby.css").status_code == 200


def test_admin_lists_models(admin_client):
    for path in ("/admin/auth/user/", "/admin/matchmaking/match/", "/admin/matchmaking/node/",
                 "/admin/matchmaking/ticket/", "/admin/accounts/profile/"):
        assert admin_client.get(path).status_code == 200, path


def test_browser_client_bundle_is_served_when_built(db, settings):
    """`node static/build.mjs` writes static/build/client.js; the lobby serves it as-is."""
    bundle = settings.BASE_DIR / "static" / "build" / "client.js"
    need(bundle.exists(), "static/build/client.js not built (make setup builds it)")
    response = Client().get("/static/client.js")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == bundle.read_bytes()


def test_admin_can_abort_a_match(admin_client, django_user_model):
    player = django_user_model.objects.create_user("stuck")
    match = Match.objects.create(match_id="stuck1", mode="arena", seats=1)
    MatchPlayer.objects.create(match=match, user=player)
    response = admin_client.post("/admin/matchmaking/match/", {
        "action": "abort_selected", "_selected_action": ["stuck1"]})
    assert response.status_code == 302
    match.refresh_from_db()
    assert match.status == "aborted" and match.reason == "aborted by admin"
    assert not MatchPlayer.objects.filter(active=True).exists()
