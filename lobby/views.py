"""Project-level views: the CSRF failure answer (JSON under /api/, a page elsewhere)."""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from .api import error


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    if request.path.startswith("/api/"):
        return error(403, f"CSRF check failed: {reason}; send the csrftoken cookie's value "
                          "in X-CSRFToken (GET /api/csrf sets it)")
    return render(request, "csrf_failure.html", {"reason": reason}, status=403)
