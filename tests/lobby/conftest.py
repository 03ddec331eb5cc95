"""Shared helpers: a CSRF-enforcing JSON client and signed node requests."""

from __future__ import annotations

import json
import secrets
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import Client

from engine import auth
from engine.auth import sign_request
from engine.registry import registry


class ApiClient:
    """A Django test client that behaves like the browser client: CSRF enforced,
    X-CSRFToken header taken from the cookie that GET /api/csrf sets."""

    def __init__(self, **extra: Any) -> None:
        self.http = Client(enforce_csrf_checks=True, **extra)
        self.csrf = self.http.get("/api/csrf").json()["csrf"]

    def _send(self, method: str, path: str, body: Any = None):
        data = b"" if body is None else json.dumps(body).encode()
        return getattr(self.http, method)(path, data=data, content_type="application/json",
                                          headers={"X-CSRFToken": self.csrf})

    def get(self, path: str, **params: Any):
        return self.http.get(path, params)

    def post(self, path: str, body: Any = None):
        return self._send("post", path, body)

    def delete(self, path: str, body: Any = None):
        return self._send("delete", path, body)

    def guest(self) -> dict:
        response = self.post("/api/guest")
        assert response.status_code == 200, response.content
        self.csrf = self.http.cookies["csrftoken"].value  # login() rotates the token
        return response.json()


def signed_post(client: Client, path: str, body: Any, *, node_id: str = "node-1",
                secret: str | None = None, now: float | None = None, nonce: str | None = None,
                raw: bytes | None = None):
    """POST as a game node would: JSON body signed per docs/protocol.md."""
    data = raw if raw is not None else json.dumps(body).encode()
    key = auth.derive_node_key(secret or settings.NODE_SECRET, node_id)  # each node its own
    headers = sign_request(key, node_id=node_id, method="POST",
                           path=path, body=data, now=time.time() if now is None else now,
                           nonce=nonce)
    return client.post(path, data=data, content_type="application/json", headers=headers)


def all_modes() -> list[str]:
    return list(registry().modes)


def heartbeat(client: Client, node_id: str = "node-1", *, capacity: int = 200, rooms: int = 0,
              players: int = 0, draining: bool = False, url: str | None = None,
              max_rooms: int | None = None, modes: list[str] | None = None,
              extra: dict | None = None, **kw: Any):
    """A signed heartbeat; the node runs `modes` (default: every registered mode);
    `extra`: more body fields (e.g. `boot`, `seated_total`, `rooms_total`)."""
    body = {"node_id": node_id, "url": url or f"http://127.0.0.1:9/{node_id}",
            "capacity": capacity, "rooms": rooms, "players": players, "draining": draining,
            "modes": all_modes() if modes is None else modes, **(extra or {})}
    if max_rooms is not None:  # optional: what the node's max_rooms is
        body["max_rooms"] = max_rooms
    return signed_post(client, "/api/internal/nodes/heartbeat", body, node_id=node_id, **kw)


def result_body(match_id: str, players: list[dict], *, node_id: str = "node-1",
                status: str = "finished", game: str | None = "arena") -> dict:
    body = {"match_id": match_id, "node_id": node_id, "status": status, "reason": "score",
            "ticks": 900, "players": players}
    if game is not None:
        body["game"] = game
    return body


def player_row(user_id: int, placement: int, *, bot: bool = False, score: int = 0,
               name: str | None = None, **stats: int) -> dict:
    return {"user_id": 0 if bot else user_id, "name": name or f"p{user_id}", "score": score,
            "placement": placement, "bot": bot, "stats": stats}


@pytest.fixture
def api(db) -> ApiClient:
    return ApiClient()


@pytest.fixture
def make_api(db):
    return ApiClient


@pytest.fixture
def node(db, client) -> str:
    """A live node registered through a signed heartbeat."""
    assert heartbeat(client).status_code == 200
    return "node-1"


@pytest.fixture
def nonce() -> str:
    return secrets.token_hex(8)
