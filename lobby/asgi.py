"""ASGI entry point (uvicorn: docs/lobby.md, "Serving"): Django's application wrapped with
the lifespan (background matcher) and the event stream (`lobby.realtime.asgi`)."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "lobby.settings")
django_application = get_asgi_application()

from lobby.realtime.asgi import LobbyApplication  # noqa: E402 - after Django's setup

application = LobbyApplication(django_application)
