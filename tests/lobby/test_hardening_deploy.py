"""Production mode on real processes (issue 11): the lobby refuses development secrets
outside development mode (item 7), the production settings pass `check --deploy` (item
8), and a database outage answers 503 JSON with Retry-After (item 14)."""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from lobby.live import GunicornServer, Session, free_port

REPO = Path(__file__).resolve().parents[2]
SECRET_VARS = ("ARENA_ENV", "DJANGO_SETTINGS_MODULE", "SECRET_KEY", "SEAT_SECRET",
               "NODE_SECRET", "NODE_KEY", "DEBUG")


def production_env(**extra: str) -> dict[str, str]:
    """This process's environment without development mode, secrets or the suite's
    settings module: what a production host starts with."""
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    return {**env, "DJANGO_SETTINGS_MODULE": "lobby.settings", **extra}


def real_secrets() -> dict[str, str]:
    return {k: secrets.token_urlsafe(50) for k in ("SECRET_KEY", "SEAT_SECRET", "NODE_SECRET")}


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("given", [
    {},
    {"SECRET_KEY": "dev-insecure-lobby-secret-key-change-me", "SEAT_SECRET": "dev-seat-secret",
     "NODE_SECRET": "dev-node-secret"},
    {"SECRET_KEY": "k" * 60, "SEAT_SECRET": "short", "NODE_SECRET": "n" * 20},
    {"SECRET_KEY": "k" * 60, "SEAT_SECRET": "s" * 20},
    {"DEBUG": "1"},  # DEBUG is not development mode
])
def test_lobby_refuses_to_start_on_development_secrets(given):
    done = manage(production_env(**given), "check")
    assert done.returncode != 0
    assert "refusing to start outside development mode (ARENA_ENV=dev)" in done.stderr
    missing = {"SEAT_SECRET", "NODE_SECRET"} if not given.get("SEAT_SECRET") else set()
    assert all(name in done.stderr for name in missing)


def test_lobby_starts_with_real_secrets_or_in_development_mode():
    assert manage(production_env(**real_secrets()), "check").returncode == 0
    assert manage(production_env(ARENA_ENV="dev"), "check").returncode == 0


@pytest.mark.timeout(60)
def test_gunicorn_refuses_to_serve_without_secrets(tmp_path):
    """The real server: the workers do not boot, gunicorn exits, the log says why."""
    log = tmp_path / "gunicorn.log"
    with open(log, "wb") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "gunicorn", "lobby.wsgi", "-w", "1",
             "-b", f"127.0.0.1:{free_port()}", "--log-level", "warning"],
            cwd=REPO, env=production_env(DEBUG="0"), stdout=out, stderr=subprocess.STDOUT,
            timeout=50)
    assert proc.returncode != 0
    assert "refusing to start outside development mode" in log.read_text()


def deploy_warnings(env: dict[str, str]) -> set[str]:
    done = manage(env, "check", "--deploy")
    assert done.returncode == 0, done.stderr
    return set(re.findall(r"\(([a-z_.]+\.[WE]\d+)\)", done.stdout + done.stderr))


PRODUCTION = {"DEBUG": "0", "ALLOWED_HOSTS": "arena.example.com",
              "CSRF_TRUSTED_ORIGINS": "https://arena.example.com", "SECURE_COOKIES": "1",
              "TRUST_X_FORWARDED_PROTO": "1", "SECURE_HSTS_SECONDS": "31536000",
              "SECURE_SSL_REDIRECT": "1"}


def test_production_settings_pass_check_deploy():
    """docs/deploy.md's production settings: only HSTS preload remains (an opt-in to the
    browsers' preload list, documented there)."""
    assert deploy_warnings(production_env(**real_secrets(), **PRODUCTION)) == \
        {"security.W021"}


def test_cluster_settings_warn_only_about_https():
    """`make run-cluster` is plain HTTP on this machine: what remains is HTTPS (HSTS, the
    redirect, secure cookies), which the TLS proxy of a real deployment brings."""
    env = production_env(**real_secrets(), DEBUG="0", ALLOWED_HOSTS="*")
    assert deploy_warnings(env) == {"security.W004", "security.W008", "security.W012",
                                    "security.W016"}


@pytest.mark.timeout(90)
def test_database_down_answers_503_json_with_retry_after():
    """PostgreSQL not answering (nothing listens on its port): the API answers 503 JSON
    with Retry-After, pages a 503 text, never a 500 page."""
    dead = f"postgres://postgres@127.0.0.1:{free_port()}/arena"
    with GunicornServer(workers=1, env={"DATABASE_URL": dead, "DB_CONN_MAX_AGE": "0"}) as srv:
        http = Session(srv.url)
        http.cookies["sessionid"] = "a" * 32  # a session to look up: a database read
        for method, path in (("GET", "/api/me"), ("GET", "/api/leaderboard"),
                             ("GET", "/api/queue")):
            status, body = http.request(method, path)
            assert status == 503, (path, body)
            assert body == {"error": "database unavailable; retry shortly"}
        status, headers, raw = raw_get(srv.port, "/api/me", "sessionid=" + "a" * 32)
        assert status == 503 and headers["Retry-After"] == "2"
        assert headers["Content-Type"].startswith("application/json")
        status, headers, raw = raw_get(srv.port, "/leaderboard/", "sessionid=" + "a" * 32)
        assert status == 503 and b"database unavailable" in raw


def raw_get(port: int, path: str, cookie: str) -> tuple[int, dict, bytes]:
    import http.client

    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", path, headers={"Cookie": cookie})
        resp = conn.getresponse()
        return resp.status, dict(resp.getheaders()), resp.read()
    finally:
        conn.close()


@pytest.mark.parametrize("name", ["TRUSTED_PROXIES", "GUEST_ALLOWLIST"])
def test_address_lists_are_checked_at_start(name):
    done = manage(production_env(ARENA_ENV="dev", **{name: "10.0.0.1,nginx"}), "check")
    assert done.returncode != 0
    assert f"{name}: 'nginx' is not an address or a network" in done.stderr
    assert manage(production_env(ARENA_ENV="dev", **{name: "10.0.0.1,10.1.0.0/16,::1"}),
                  "check").returncode == 0
