"""CSRF on forms and JSON API, login rate limit, input validation, no acting for others."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

from lobby.accounts.models import LoginFailure

User = get_user_model()


def test_json_api_requires_csrf_header(db):
    http = Client(enforce_csrf_checks=True)
    response = http.post("/api/guest")
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]
    token = http.get("/api/csrf").json()["csrf"]
    assert http.post("/api/guest", headers={"X-CSRFToken": "forged" * 6}).status_code == 403
    assert http.post("/api/guest", headers={"X-CSRFToken": token}).status_code == 200


def test_forms_require_csrf_token(db):
    http = Client(enforce_csrf_checks=True)
    response = http.post("/guest/")
    assert response.status_code == 403 and b"Session check failed" in response.content
    page = http.get("/accounts/signup/")
    assert b"csrfmiddlewaretoken" in page.content
    response = http.post("/accounts/signup/", {"username": "zed", "password1": "ample-Grizzly-42",
                                               "password2": "ample-Grizzly-42"})
    assert response.status_code == 403 and not User.objects.exists()


@pytest.fixture
def fred(db):
    return User.objects.create_user("fred", password="right-Horse-91")


def test_login_rate_limit_per_account(fred, settings):
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 5  # the ceiling (default 100), lowered here
    for i in range(5):  # each from another address: the account key alone trips
        response = Client(REMOTE_ADDR=f"10.0.0.{i}").post(
            "/accounts/login/", {"username": "fred", "password": "nope"})
        assert response.status_code == 200
    blocked = Client(REMOTE_ADDR="10.0.1.1").post(
        "/accounts/login/", {"username": "FRED", "password": "right-Horse-91"})
    assert blocked.status_code == 429 and b"Too many failed logins" in blocked.content
    LoginFailure.objects.update(at="2000-01-01T00:00:00Z")  # the window passes
    ok = Client(REMOTE_ADDR="10.0.1.1").post(
        "/accounts/login/", {"username": "fred", "password": "right-Horse-91"})
    assert ok.status_code == 302


def test_login_rate_limit_per_address(fred, settings):
    settings.LOGIN_ADDRESS_MAX_FAILURES = 5  # default 50, lowered here
    http = Client(REMOTE_ADDR="10.9.9.9")
    for i in range(5):
        assert http.post("/accounts/login/", {"username": f"u{i}", "password": "x"}).status_code == 200
    assert http.post("/accounts/login/", {"username": "fred", "password": "right-Horse-91"}
                     ).status_code == 429
    other = Client(REMOTE_ADDR="10.9.9.10")
    assert other.post("/accounts/login/", {"username": "fred", "password": "right-Horse-91"}
                      ).status_code == 302


def test_api_input_errors_are_clear_json(api):
    assert api.get("/api/me").status_code == 401
    assert api.get("/api/queue").json() == {"error": "not signed in"}
    api.guest()
    for body, fragment in ((b"{not json", "JSON"), (b"[1, 2]", "object")):
        response = api.http.post("/api/queue", data=body, content_type="application/json",
                                 headers={"X-CSRFToken": api.csrf})
        assert response.status_code == 400 and fragment in response.json()["error"]
    response = api.post("/api/queue", {"mode": "no-such-mode"})
    assert response.status_code == 400 and "mode" in response.json()["error"]
    response = api.post("/api/queue", {"mode": 7})
    assert response.status_code == 400
    response = api.http.put("/api/queue", headers={"X-CSRFToken": api.csrf})
    assert response.status_code == 405 and "error" in response.json()
    assert api.get("/api/leaderboard", board="nope").status_code == 400
    assert api.get("/api/leaderboard", page="-1").status_code == 400
    assert api.get("/api/leaderboard", page="99").status_code == 404


def test_no_user_acts_for_another(make_api, node):
    """The queue API acts on the session's user only; extra fields are ignored."""
    a, b = make_api(), make_api()
    ga, _ = a.guest(), b.guest()
    assert b.post("/api/queue", {"user_id": ga["user_id"]}).status_code == 200
    assert a.get("/api/queue").json()["status"] == "none"
    assert b.delete("/api/queue", {"user_id": ga["user_id"]}).json()["status"] == "cancelled"
