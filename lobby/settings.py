"""Lobby settings: everything comes from the environment, with defaults for `make run`.

See docs/lobby.md ("Settings") for the full list.
"""

from __future__ import annotations

import ipaddress
import json
import os
from collections.abc import Mapping
from pathlib import Path

import dj_database_url

BASE_DIR = Path(__file__).resolve().parent.parent  # the repository root
VAR_DIR = BASE_DIR / "var"
VAR_DIR.mkdir(exist_ok=True)


def env_str(name: str, default: str) -> str:
    return os.environ.get(name, default)


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def env_bool(name: str, default: bool) -> bool:
    return os.environ.get(name, "1" if default else "0").lower() in ("1", "true", "yes", "on")


# --- development mode and secrets -------------------------------------------------------
# Development mode is explicit: ARENA_ENV=dev (make run, run.py, the tests). Outside it the
# lobby refuses to start on a missing or development secret (docs/deploy.md, "Secrets").
DEV_MODE = env_str("ARENA_ENV", "") == "dev"
DEV_SECRETS = {"SECRET_KEY": "dev-insecure-lobby-secret-key-change-me",
               "SEAT_SECRET": "dev-seat-secret", "NODE_SECRET": "dev-node-secret"}
MIN_SECRET_LENGTH = 16  # characters (SECRET_KEY: 50, as `check --deploy` wants)


def secret_problems(env: Mapping[str, str], dev: bool) -> list[str]:
    """Why these secrets must not be used (empty: they may)."""
    if dev:
        return []
    problems = []
    for name, dev_value in DEV_SECRETS.items():
        value = env.get(name, "")
        minimum = 50 if name == "SECRET_KEY" else MIN_SECRET_LENGTH
        if not value or value == dev_value:
            problems.append(f"{name} is unset or the development value")
        elif len(value) < minimum:
            problems.append(f"{name} is shorter than {minimum} characters")
    return problems


if _problems := secret_problems(os.environ, DEV_MODE):
    from django.core.exceptions import ImproperlyConfigured

    raise ImproperlyConfigured(
        "refusing to start outside development mode (ARENA_ENV=dev): " + "; ".join(_problems)
        + ". Set long random values (the same on every lobby process; SEAT_SECRET also on "
        "the nodes), e.g. python -c 'import secrets; print(secrets.token_urlsafe(50))'.")

SECRET_KEY = env_str("SECRET_KEY", DEV_SECRETS["SECRET_KEY"])
DEBUG = env_bool("DEBUG", DEV_MODE)
ALLOWED_HOSTS = [h for h in env_str("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in env_str("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "lobby.accounts",
    "lobby.matchmaking",
    "lobby.ratings",
    "lobby.realtime",
    "lobby.replays",
]

MIDDLEWARE = [
    "lobby.shared.middleware.ClientAddress",  # REMOTE_ADDR from TRUSTED_PROXIES' header
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "lobby.accounts.middleware.GuestSessions",  # a guest's session expires when idle
    "lobby.accounts.middleware.Housekeeping",  # expired sessions, never-played guests
    "lobby.shared.middleware.SharedStateErrors",  # Redis or database unreachable -> 503
]

ROOT_URLCONF = "lobby.urls"
WSGI_APPLICATION = "lobby.wsgi.application"
ASGI_APPLICATION = "lobby.asgi.application"  # uvicorn lobby.asgi:application (docs/lobby.md)

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "lobby" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- database ------------------------------------------------------------------------
DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL", f"sqlite:///{VAR_DIR / 'lobby.sqlite3'}"),
        conn_max_age=env_int("DB_CONN_MAX_AGE", 60),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # BEGIN IMMEDIATE: write transactions are serialized up front, so the matcher pass
    # and a queue join never interleave (SQLite has no row locks). WAL lets reads go on.
    # Connections persist (DB_CONN_MAX_AGE) as on PostgreSQL: a request's threads are a
    # fixed pool (gunicorn's, lobby.realtime.asgi's), and opening one costs more than the
    # queries of a request (Django registers its SQL functions on each).
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not :memory:, so that test worker processes (gunicorn) share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / f"test-lobby-{os.getpid()}.sqlite3")}
else:
    # Per test run, so that two runs in one checkout (or two helpers) do not collide.
    DATABASES["default"]["TEST"] = {"NAME": f"test_{DATABASES['default']['NAME']}_{os.getpid()}"}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "home"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# --- static files: whitenoise serves them, straight from the finders ------------------
STATIC_URL = "/static/"
STATIC_ROOT = VAR_DIR / "static"
STATICFILES_DIRS = [BASE_DIR / "static" / "build", BASE_DIR / "lobby" / "static"]
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- replays (docs/lobby.md, "Replays"): Django's storage API, alias "replays" ---------------
# REPLAY_STORAGE: a storage backend's dotted path (default the file system under
# var/replays), REPLAY_STORAGE_OPTIONS: its OPTIONS as JSON (e.g. django-storages' S3:
# REPLAY_STORAGE=storages.backends.s3.S3Storage REPLAY_STORAGE_OPTIONS='{"bucket_name": "x"}').
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    "replays": {
        "BACKEND": env_str("REPLAY_STORAGE", "django.core.files.storage.FileSystemStorage"),
        "OPTIONS": json.loads(env_str("REPLAY_STORAGE_OPTIONS", "")
                              or json.dumps({"location": str(VAR_DIR / "replays")})),
    },
}
REPLAY_RETENTION_DAYS = env_float("REPLAY_RETENTION_DAYS", 90)  # files removed after; 0: kept
REPLAY_REQUIRED = env_bool("REPLAY_REQUIRED", True)  # ratings only once the replay verified
REPLAY_VERIFY_TASK = env_str("REPLAY_VERIFY_TASK", "auto")  # ASGI lifespan verifier; auto: no REDIS_URL
REPLAY_VERIFY_INTERVAL = env_float("REPLAY_VERIFY_INTERVAL", 10)  # seconds between idle passes

CSRF_FAILURE_VIEW = "lobby.views.csrf_failure"
SESSION_ENGINE = "lobby.accounts.sessions"  # Django's database sessions, fewer writes at sign-in
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
# Behind HTTPS (a TLS proxy that sets X-Forwarded-Proto): cookies only over HTTPS.
SESSION_COOKIE_SECURE = CSRF_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
if env_bool("TRUST_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
# HTTPS only (docs/deploy.md, "check --deploy"): HSTS and the http -> https redirect; the
# nodes' signed requests reach the lobby's internal URL directly, over plain HTTP.
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_REDIRECT_EXEMPT = [r"^api/internal/"]
# Proxies whose X-Forwarded-For is believed (addresses or networks, comma list):
# lobby.shared.middleware.ClientAddress. Empty: REMOTE_ADDR is the client.
TRUSTED_PROXIES = [p.strip() for p in env_str("TRUSTED_PROXIES", "").split(",") if p.strip()]

# Sessions: two weeks for accounts (Django's default); a guest's expires after
# GUEST_SESSION_AGE idle seconds. Expired sessions and never-played guests older than
# GUEST_UNPLAYED_MAX_AGE are removed every HOUSEKEEPING_INTERVAL seconds
# (`manage.py housekeeping`, also run by the lobby itself).
GUEST_SESSION_AGE = env_int("GUEST_SESSION_AGE", 24 * 3600)
GUEST_UNPLAYED_MAX_AGE = env_int("GUEST_UNPLAYED_MAX_AGE", 24 * 3600)
HOUSEKEEPING_INTERVAL = env_float("HOUSEKEEPING_INTERVAL", 3600)  # 0: only the command

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"lobby": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")}},
}

# --- the game: secrets shared with the nodes (engine/auth.py) --------------------------
SEAT_SECRET = env_str("SEAT_SECRET", DEV_SECRETS["SEAT_SECRET"])
# The master key: each node signs with derive_node_key(NODE_SECRET, node id), never this.
NODE_SECRET = env_str("NODE_SECRET", DEV_SECRETS["NODE_SECRET"])
SEAT_TOKEN_TTL = env_int("SEAT_TOKEN_TTL", 30)  # seconds
NODE_TIMEOUT = env_int("NODE_TIMEOUT", 15)  # seconds without heartbeat before a node drops

# --- matchmaking --------------------------------------------------------------------
# Modes and their players per match come from the game registry (lobby/games.py).
MATCH_SIZE = env_int("MATCH_SIZE", 4)  # cap on seats per match; 0: each mode's max_players
MATCH_MODE = env_str("MATCH_MODE", "")  # default mode of a ticket; empty: the first offered
MATCH_MODES = [m for m in env_str("MATCH_MODES", "").split(",") if m]  # empty: every mode
MATCH_MAX_WAIT = env_float("MATCH_MAX_WAIT", 10)  # seconds before a match starts with bots
MATCH_MAX_DURATION = env_int("MATCH_MAX_DURATION", 300)  # unreported match -> aborted
MATCHER_INTERVAL = env_float("MATCHER_INTERVAL", 0.5)  # min seconds between matcher passes
RATING_WINDOW_BASE = env_float("RATING_WINDOW_BASE", 100)  # rating points at wait 0
RATING_WINDOW_GROWTH = env_float("RATING_WINDOW_GROWTH", 50)  # points added per second
RATING_WINDOW_MAX = env_float("RATING_WINDOW_MAX", 1000)

# --- ratings ------------------------------------------------------------------------
RATING_START = env_float("RATING_START", 1200)
RATING_K = env_float("RATING_K", 32)

# --- login and guest rate limits (lobby/accounts/ratelimit.py) ------------------------
LOGIN_FAILURE_WINDOW = env_int("LOGIN_FAILURE_WINDOW", 300)  # seconds
LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)  # per (account, address) pair
LOGIN_ACCOUNT_MAX_FAILURES = env_int("LOGIN_ACCOUNT_MAX_FAILURES", 100)  # per account
LOGIN_ADDRESS_MAX_FAILURES = env_int("LOGIN_ADDRESS_MAX_FAILURES", 50)  # per address
GUEST_MAX_PER_ADDRESS = env_int("GUEST_MAX_PER_ADDRESS", 30)  # new guests per address
GUEST_WINDOW = env_int("GUEST_WINDOW", 600)  # seconds
# Addresses or networks exempt from the guest limit (e.g. a load-test machine): comma list.
GUEST_ALLOWLIST = [a.strip() for a in env_str("GUEST_ALLOWLIST", "").split(",") if a.strip()]


def _check_networks(name: str, entries: list[str]) -> None:
    for entry in entries:
        try:
            ipaddress.ip_network(entry, strict=False)
        except ValueError:
            from django.core.exceptions import ImproperlyConfigured

            raise ImproperlyConfigured(f"{name}: {entry!r} is not an address or a network "
                                       "(e.g. 10.0.0.2 or 10.0.0.0/8)") from None


_check_networks("TRUSTED_PROXIES", TRUSTED_PROXIES)
_check_networks("GUEST_ALLOWLIST", GUEST_ALLOWLIST)

# --- shared state (docs/scale-out.md): the database by default, Redis with REDIS_URL ---
REDIS_URL = env_str("REDIS_URL", "")  # e.g. redis://127.0.0.1:6379/0; empty: the database
REDIS_PREFIX = env_str("REDIS_PREFIX", "arena:")  # every key starts with it

# --- the live lobby: event stream and background matcher (lobby/realtime) -------------
SSE_HEARTBEAT = env_float("SSE_HEARTBEAT", 15)  # seconds between keep-alive comments
SSE_MAX_AGE = env_float("SSE_MAX_AGE", 3600)  # a stream ends after; the browser reconnects
SSE_MAX_STREAMS = env_int("SSE_MAX_STREAMS", 10000)  # open streams per process; then 503
ASGI_THREADS = env_int("ASGI_THREADS", 8)  # threads serving the synchronous views (lobby.realtime.asgi)
MATCHER_TASK = env_str("MATCHER_TASK", "auto")  # ASGI lifespan matcher; auto: without REDIS_URL
MATCHER_IN_REQUESTS = env_bool("MATCHER_IN_REQUESTS", True)  # passes in GET /api/queue, /queue/
