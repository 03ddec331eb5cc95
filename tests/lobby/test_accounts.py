"""Accounts: sign up, log in/out, password change, guests and guest claim, /api/me."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.test import Client

from lobby.accounts.models import Profile
from lobby.matchmaking.models import Match, MatchPlayer
from lobby.ratings.models import Rating

User = get_user_model()
PASSWORD = "ample-Grizzly-42"


def signup(client: Client, username: str, password: str = PASSWORD):
    return client.post("/accounts/signup/", {"username": username, "password1": password,
                                             "password2": password})


def test_signup_logs_in_and_creates_profile(client, db):
    response = signup(client, "alice")
    assert response.status_code == 302
    me = client.get("/api/me").json()
    assert me["username"] == "alice" and me["guest"] is False and me["rating"] == 1200


def test_signup_runs_password_validators_and_name_rules(client, db):
    response = signup(client, "bob", "12345678")
    assert response.status_code == 200
    assert b"too common" in response.content or b"entirely numeric" in response.content
    assert signup(client, "guest-abc").status_code == 200  # reserved prefix
    assert signup(client, "no spaces here").status_code == 200
    assert not User.objects.exists()


def test_login_logout_and_password_change(client, db):
    signup(client, "carol")
    client.post("/accounts/logout/")
    assert client.get("/api/me").status_code == 401
    assert client.post("/accounts/login/", {"username": "carol", "password": "wrong"}).status_code == 200
    response = client.post("/accounts/login/", {"username": "carol", "password": PASSWORD})
    assert response.status_code == 302
    response = client.post("/accounts/password/", {
        "old_password": PASSWORD, "new_password1": "other-Walrus-77",
        "new_password2": "other-Walrus-77"})
    assert response.status_code == 302
    assert client.get("/api/me").status_code == 200  # session survives the change
    assert User.objects.get(username="carol").check_password("other-Walrus-77")


def test_guest_api_signs_in_a_new_guest(make_api):
    a, b = make_api(), make_api()
    ga, gb = a.guest(), b.guest()
    assert ga["user_id"] != gb["user_id"]
    assert ga["username"].startswith("guest-")
    me = a.get("/api/me").json()
    assert me == {"user_id": ga["user_id"], "username": ga["username"], "rating": 1200.0,
                  "ratings": {}, "guest": True, "games": 0, "wins": 0}
    assert a.guest() == ga  # the same session keeps its guest
    assert not User.objects.get(pk=ga["user_id"]).has_usable_password()


def test_sign_in_records_last_login(make_api, client, db):
    """A new guest's last_login is its sign-in (written by its INSERT); a later login of an
    account moves it."""
    guest = User.objects.get(pk=make_api().guest()["user_id"])
    assert guest.last_login is not None and guest.last_login == guest.date_joined
    signup(client, "dora")
    first = User.objects.get(username="dora").last_login
    assert first is not None
    client.post("/accounts/logout/")
    assert client.post("/accounts/login/", {"username": "dora", "password": PASSWORD}
                       ).status_code == 302
    assert User.objects.get(username="dora").last_login > first


def test_play_as_guest_button_signs_in_and_queues(client, node):
    home = client.get("/")
    assert b"PLAY AS GUEST" in home.content
    response = client.post("/guest/")
    assert response.status_code == 302 and response["Location"] == "/queue/"
    assert client.get("/api/queue").json()["status"] == "waiting"


def test_guest_claim_keeps_rating_and_history(make_api):
    api = make_api()
    guest = api.guest()
    user = User.objects.get(pk=guest["user_id"])
    Profile.objects.filter(user=user).update(games=1, wins=1)
    Rating.objects.create(user=user, game="arena", rating=1333.0, games=1, wins=1)
    match = Match.objects.create(match_id="m-claim", game="arena", mode="arena", seats=1,
                                 status="finished")
    MatchPlayer.objects.create(match=match, user=user, active=False, placement=1, score=7)
    response = api.http.post("/accounts/claim/", {
        "username": "dora", "password1": PASSWORD, "password2": PASSWORD},
        headers={"X-CSRFToken": api.csrf})
    assert response.status_code == 302, response.content
    me = api.get("/api/me").json()
    assert me["user_id"] == guest["user_id"] and me["username"] == "dora"
    assert me["guest"] is False and me["rating"] == 1333.0
    assert MatchPlayer.objects.filter(user_id=guest["user_id"]).count() == 1
    fresh = Client()
    assert fresh.post("/accounts/login/", {"username": "dora", "password": PASSWORD}).status_code == 302
    page = fresh.get("/players/dora/")
    assert b"1333" in page.content and b"m-claim" in page.content


def test_claim_rejects_bad_input_and_regular_users(make_api, client):
    api = make_api()
    api.guest()
    bad = api.http.post("/accounts/claim/", {"username": "x", "password1": "a", "password2": "b"},
                        headers={"X-CSRFToken": api.csrf})
    assert bad.status_code == 200 and b"differ" in bad.content
    signup(client, "erin")
    assert client.get("/accounts/claim/").status_code == 302  # not a guest: nothing to claim
