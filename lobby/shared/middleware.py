"""The lobby's request guards: the client's real address, and outages answered 503.

`SharedStateErrors`: Redis (after the client's own reconnection attempts) or the database
unreachable answers 503 with `Retry-After`, JSON under /api/, never a 500. Nothing is
lost: tickets, matches and results are database rows; a node retries its heartbeat and
its outbox retries the result; a player's client polls again.

`ClientAddress`: behind a reverse proxy every request comes from the proxy; REMOTE_ADDR is
replaced by the client's address from X-Forwarded-For, but only when the request comes
from one of TRUSTED_PROXIES (anyone else could write that header).
"""

from __future__ import annotations

import functools
import ipaddress
import logging
from collections.abc import Callable

from django.conf import settings
from django.db import InterfaceError as DbInterfaceError
from django.db import OperationalError as DbOperationalError
from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("lobby.shared")

RETRY_AFTER = 2  # seconds, in the 503's Retry-After
MESSAGE = "shared state unavailable (Redis); retry shortly"
DB_MESSAGE = "database unavailable; retry shortly"


class SharedStateErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if isinstance(exc, RedisConnectionError | RedisTimeoutError):
            what, message = "Redis", MESSAGE
        elif isinstance(exc, DbOperationalError | DbInterfaceError):
            what, message = "database", DB_MESSAGE
        else:
            return None
        log.warning("%s %s: %s unavailable: %s", request.method, request.path, what, exc)
        from lobby.accounts import counters

        counters.incr("arena_lobby_unavailable_total", backend=what.lower())
        return unavailable(request, message)


def unavailable(request: HttpRequest, message: str) -> HttpResponse:
    if request.path.startswith("/api/"):
        response: HttpResponse = JsonResponse({"error": message}, status=503)
    else:
        response = HttpResponse(message, status=503, content_type="text/plain")
    response["Retry-After"] = str(RETRY_AFTER)
    return response


class ClientAddress:
    """REMOTE_ADDR := the client, read from X-Forwarded-For right to left, skipping the
    trusted proxies (each proxy appends the address it saw), when the connection itself
    comes from a trusted proxy. Must come first in MIDDLEWARE."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        proxies = settings.TRUSTED_PROXIES
        if proxies:
            request.META["REMOTE_ADDR"] = client_address(
                request.META.get("REMOTE_ADDR", ""),
                request.META.get("HTTP_X_FORWARDED_FOR", ""), proxies)
        return self.get_response(request)


def client_address(peer: str, forwarded_for: str, proxies: list[str]) -> str:
    if not in_networks(peer, proxies):
        return peer
    client = peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_address(hop):
            break  # garbage: keep the last address a trusted proxy vouched for
        client = hop
        if not in_networks(hop, proxies):
            break
    return client


def is_address(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def _networks(entries: tuple[str, ...]) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    return tuple(ipaddress.ip_network(e, strict=False) for e in entries)


def in_networks(address: str, entries: list[str]) -> bool:
    """True if `address` is one of `entries` (addresses or networks, e.g. 10.0.0.0/8)."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in _networks(tuple(entries)))
