"""Lobby URLs: pages, the player API (/api/...), the node API (/api/internal/...), admin."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("lobby.accounts.urls")),
    path("", include("lobby.matchmaking.urls")),
    path("", include("lobby.replays.urls")),   # before ratings' matches/<id>/
    path("", include("lobby.ratings.urls")),
    path("", include("lobby.realtime.urls")),
]
