"""Login limits that slow an attacker without locking the owner out (issue 11, items 9-12).

Real Django (test client, the real middleware, views and admin); addresses are set as the
client's REMOTE_ADDR, and the proxy's header as X-Forwarded-For.
"""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client

User = get_user_model()
RIGHT = "right-Horse-91"


@pytest.fixture(autouse=True)
def fast_hasher(settings):
    """Every login checks a password: a cheap hasher keeps these tests fast (the limits
    are what is tested, not PBKDF2)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def fred(db):
    return User.objects.create_user("fred", password=RIGHT)


def login(address: str, username: str, password: str, path: str = "/accounts/login/",
          **headers: str) -> int:
    return Client(REMOTE_ADDR=address, **headers).post(
        path, {"username": username, "password": password}).status_code


def metric(name: str) -> int:
    text = Client().get("/metrics").content.decode()
    return sum(int(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name + " "))


def test_owner_logs_in_while_an_attacker_is_locked_out(fred, settings):
    """Item 12: five failures lock the (account, address) pair, not the account."""
    settings.LOGIN_MAX_FAILURES = 5
    refused = metric('arena_lobby_refused_total{limit="login_pair"}')
    failures = metric("arena_lobby_login_failures_total")
    for _ in range(5):
        assert login("10.0.0.66", "fred", "guess") == 200
    assert login("10.0.0.66", "fred", RIGHT) == 429  # even the right password, from there
    assert login("10.0.0.7", "fred", RIGHT) == 302  # the owner, from their own address
    # the owner's success cleared only their own pair: the attacker is still held
    assert login("10.0.0.66", "fred", "guess") == 429
    assert metric('arena_lobby_refused_total{limit="login_pair"}') == refused + 2
    assert metric("arena_lobby_login_failures_total") == failures + 5


def test_account_ceiling_holds_guesses_spread_over_addresses(fred, settings):
    """Item 12: a much higher per-account ceiling stops a distributed attack."""
    settings.LOGIN_MAX_FAILURES, settings.LOGIN_ACCOUNT_MAX_FAILURES = 5, 8
    for i in range(8):  # one guess per address: no pair reaches its limit
        assert login(f"10.0.1.{i}", "fred", "guess") == 200
    assert login("10.0.2.1", "fred", RIGHT) == 429


def test_address_limit_holds_one_address_guessing_many_accounts(fred, settings):
    settings.LOGIN_ADDRESS_MAX_FAILURES = 6
    for i in range(6):
        assert login("10.0.3.3", f"user{i}", "guess") == 200
    assert login("10.0.3.3", "fred", RIGHT) == 429
    assert login("10.0.3.4", "fred", RIGHT) == 302


def test_compatible_spellings_of_a_name_share_its_count(fred, settings):
    """Item 10: Django logs in "ｆｒｅｄ" (fullwidth) as fred (NFKC); so the limit must
    count it as fred."""
    assert login("10.0.4.1", "ｆｒｅｄ", RIGHT) == 302  # the spelling really logs in as fred
    settings.LOGIN_ACCOUNT_MAX_FAILURES = 4
    for i, name in enumerate(["ｆｒｅｄ", "ＦＲＥＤ", "ｆred", "Ｆｒｅｄ"]):
        assert login(f"10.0.5.{i}", name, "guess") == 200
    assert login("10.0.6.1", "fred", RIGHT) == 429
    assert login("10.0.6.2", "ＦＲＥＤ", RIGHT) == 429


def test_pair_key_is_normalised_too(fred, settings):
    settings.LOGIN_MAX_FAILURES = 3
    for name in ("ｆｒｅｄ", "ＦＲＥＤ", "Fred"):
        assert login("10.0.7.1", name, "guess") == 200
    assert login("10.0.7.1", "fred", RIGHT) == 429


def test_admin_login_is_under_the_same_limits(db, settings):
    """Item 11: /admin/login/ counts failures and answers 429 over the limit, sharing the
    counts of /accounts/login/."""
    User.objects.create_superuser("root", password=RIGHT)
    settings.LOGIN_MAX_FAILURES = 5
    for _ in range(3):
        assert login("10.0.8.1", "root", "guess", "/admin/login/") == 200
    for _ in range(2):
        assert login("10.0.8.1", "root", "guess") == 200
    response = Client(REMOTE_ADDR="10.0.8.1").post(
        "/admin/login/", {"username": "root", "password": RIGHT})
    assert response.status_code == 429 and response["Retry-After"]
    assert login("10.0.8.1", "root", RIGHT) == 429
    # another address still gets in, through the admin's own form
    assert login("10.0.8.2", "root", RIGHT, "/admin/login/") == 302


def test_client_address_comes_from_trusted_proxies_only(fred, settings):
    """Item 9: behind the proxy every client shares its address; the proxy's
    X-Forwarded-For is believed from the configured proxies only."""
    settings.TRUSTED_PROXIES = ["10.9.0.0/24"]
    settings.LOGIN_ADDRESS_MAX_FAILURES = 5
    proxy = "10.9.0.2"
    for i in range(5):  # one client through the proxy guesses 5 accounts
        assert login(proxy, f"u{i}", "x", HTTP_X_FORWARDED_FOR="203.0.113.5") == 200
    assert login(proxy, "fred", RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.5") == 429
    # another client through the same proxy is not affected
    assert login(proxy, "fred", RIGHT, HTTP_X_FORWARDED_FOR="203.0.113.6") == 302
    # a chain: what the client wrote itself (left) is ignored, the proxy's entry counts
    assert login(proxy, "fred", RIGHT,
                 HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.5, 10.9.0.3") == 429


def test_forwarded_for_from_an_untrusted_peer_is_ignored(fred, settings):
    settings.TRUSTED_PROXIES = ["10.9.0.0/24"]
    settings.LOGIN_ADDRESS_MAX_FAILURES = 5
    for i in range(5):  # a direct client inventing a new address each time
        assert login("198.51.100.9", f"u{i}", "x", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}") == 200
    assert login("198.51.100.9", "fred", RIGHT, HTTP_X_FORWARDED_FOR="192.0.2.99") == 429
    assert login("198.51.100.10", "fred", RIGHT) == 302
