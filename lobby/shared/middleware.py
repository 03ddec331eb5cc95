"""Redis unreachable (after the client's own reconnection attempts): answer 503, not 500.

Nothing is lost: tickets, matches and results are database rows; a node retries its
heartbeat and its outbox retries the result; a player's client polls again.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

log = logging.getLogger("lobby.shared")

RETRY_AFTER = 2  # seconds, in the 503's Retry-After
MESSAGE = "shared state unavailable (Redis); retry shortly"


class SharedStateErrors:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exc: Exception) -> HttpResponse | None:
        if not isinstance(exc, RedisConnectionError | RedisTimeoutError):
            return None
        log.warning("%s %s: Redis unavailable: %s", request.method, request.path, exc)
        if request.path.startswith("/api/"):
            response: HttpResponse = JsonResponse({"error": MESSAGE}, status=503)
        else:
            response = HttpResponse(MESSAGE, status=503, content_type="text/plain")
        response["Retry-After"] = str(RETRY_AFTER)
        return response
