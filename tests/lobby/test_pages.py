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
                 "/admin/matchmaking/ticket/", "/admin/accounts/profile/",
                 "/admin/ratings/rating/"):
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


@pytest.fixture
def two_games(db):
    """ann: Arena 1300 (1 match), Tag 1100 (1 match, finished this week); bob: Tag only."""
    ann, bob = (User.objects.create_user(n) for n in ("ann", "bob"))
    Rating.objects.create(user=ann, game="arena", rating=1300, games=1, wins=1)
    Rating.objects.create(user=ann, game="tag", rating=1100, games=1, wins=0)
    Rating.objects.create(user=bob, game="tag", rating=1250, games=1, wins=1)
    now = timezone.now()
    tag = Match.objects.create(
        match_id="tag1", game="tag", mode="tag", seats=2, bots=1, status="finished",
        ended_at=now, result=[
            {"user_id": bob.id, "name": "bob", "score": 5, "placement": 1, "bot": False,
             "stats": {"tags": 4, "caught": 1}},
            {"user_id": ann.id, "name": "ann", "score": 2, "placement": 2, "bot": False,
             "stats": {"tags": 1, "caught": 6}},
            {"user_id": 0, "name": "bot-1", "score": 0, "placement": 3, "bot": True,
             "stats": {"tags": 0, "caught": 9}}])
    MatchPlayer.objects.create(match=tag, user=bob, active=False, placement=1, score=5,
                               stats={"tags": 4, "caught": 1}, points=3, rating_before=1200,
                               rating_after=1250)
    MatchPlayer.objects.create(match=tag, user=ann, active=False, placement=2, score=2,
                               stats={"tags": 1, "caught": 6}, points=2, rating_before=1200,
                               rating_after=1100)
    arena = Match.objects.create(match_id="ar1", game="arena", mode="duel", seats=1, bots=1,
                                 status="finished", ended_at=now)
    MatchPlayer.objects.create(match=arena, user=ann, active=False, placement=1, score=9,
                               stats={"kills": 7, "deaths": 2}, points=2, rating_before=1200,
                               rating_after=1300)
    return ann, bob


def test_leaderboards_are_per_game(two_games):
    arena = Client().get("/api/leaderboard").json()  # the default mode's game
    assert arena["game"] == "arena" and [r["username"] for r in arena["rows"]] == ["ann"]
    tag = Client().get("/api/leaderboard", {"game": "tag"}).json()
    assert [(r["username"], r["rating"]) for r in tag["rows"]] == [("bob", 1250), ("ann", 1100)]
    week = Client().get("/api/leaderboard", {"game": "tag", "board": "week"}).json()
    assert [(r["username"], r["points"]) for r in week["rows"]] == [("bob", 3), ("ann", 2)]
    week = Client().get("/api/leaderboard", {"game": "arena", "board": "week"}).json()
    assert [(r["username"], r["points"]) for r in week["rows"]] == [("ann", 2)]
    bad = Client().get("/api/leaderboard", {"game": "chess"})
    assert bad.status_code == 400 and "unknown game" in bad.json()["error"]
    page = Client().get("/leaderboard/", {"game": "tag"}).content.decode()
    assert "Leaderboards · Tag" in page and "bob" in page
    assert 'href="?game=arena&board=all"' in page  # the game selector
    assert 'href="?game=tag&board=week"' in page


def test_match_page_shows_the_games_own_columns(two_games):
    page = Client().get("/matches/tag1/").content.decode()
    assert "<th>Tags</th><th>Caught</th>" in page and "Kills" not in page
    row = page[page.index("bob</a>"):]
    row = row[:row.index("</tr>")]
    cells = [c.split("<")[0] for c in row.split('<td class="num">')[1:]]
    assert cells[:3] == ["5", "4", "1"]  # bob's score, tags, caught
    assert "bot-1" in page and "+50.0" in page and "-100.0" in page
    arena = Client().get("/matches/ar1/").content.decode()
    assert "<th>Kills</th><th>Deaths</th>" in arena


def test_profile_shows_each_game(two_games):
    page = Client().get("/players/ann/").content.decode()
    arena_at, tag_at = page.index("<h2>Arena</h2>"), page.index("<h2>Tag</h2>")
    arena, tag = page[arena_at:tag_at], page[tag_at:page.index("Recent matches")]
    assert "1300" in arena and "#1" in arena and "kills" in arena and "tags" not in arena
    assert "1100" in tag and "#2" in tag and "<b>1</b><span>tags</span>" in tag
    assert "<b>6</b><span>caught</span>" in tag
    assert "Tags 1 · Caught 6" in page and "Kills 7 · Deaths 2" in page


def test_a_game_no_longer_registered_still_shows(db):
    """Its stored stats name their own columns (no registry labels to take)."""
    u = User.objects.create_user("old")
    m = Match.objects.create(match_id="gone1", game="gone", mode="gone", seats=1,
                             status="finished", ended_at=timezone.now(), result=[
                                 {"user_id": u.id, "name": "old", "score": 1, "placement": 1,
                                  "bot": False, "stats": {"laps": 3}}])
    MatchPlayer.objects.create(match=m, user=u, active=False, placement=1, score=1,
                               stats={"laps": 3})
    assert "<th>Laps</th>" in Client().get("/matches/gone1/").content.decode()
    assert "Laps 3" in Client().get("/players/old/").content.decode()
