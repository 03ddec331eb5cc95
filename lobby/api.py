"""Small helpers shared by the JSON views: errors are 4xx `{"error": "..."}`."""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.http import HttpRequest, HttpResponse, JsonResponse

MAX_JSON_BODY = 64 * 1024  # bytes; a player API body is a few dozen


def error(status: int, message: str, /, **extra: Any) -> JsonResponse:
    return JsonResponse({"error": message, **extra}, status=status)


class BadRequest(Exception):
    """Raised by validators; the view answers 400 with the message."""


def json_body(request: HttpRequest, *, required: bool = False) -> dict:
    """The request body as a JSON object ({} for an empty optional body)."""
    if len(request.body) > MAX_JSON_BODY:
        raise BadRequest("body too large")
    if not request.body.strip():
        if required:
            raise BadRequest("a JSON object body is required")
        return {}
    try:
        data = json.loads(request.body)
    except (ValueError, UnicodeDecodeError):
        raise BadRequest("body is not valid JSON") from None
    if not isinstance(data, dict):
        raise BadRequest("body must be a JSON object")
    return data


def api_view(methods: tuple[str, ...], *, login: bool = False) -> Callable:
    """Method check (405), optional sign-in check (401) and BadRequest -> 400."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in methods:
                response = error(405, f"method not allowed; use {', '.join(methods)}")
                response["Allow"] = ", ".join(methods)
                return response
            if login and not request.user.is_authenticated:
                return error(401, "not signed in")
            try:
                return view(request, *args, **kwargs)
            except BadRequest as exc:
                return error(400, str(exc))

        return wrapper

    return decorate
