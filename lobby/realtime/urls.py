from django.urls import path

from . import pages, stream

urlpatterns = [
    path("api/events", stream.events, name="api_events"),
    path("api/spectate", pages.api_spectate, name="api_spectate"),
    path("live/", pages.live_page, name="live"),
]
urlpatterns.append(path("live/<str:match_id>/spectate/", pages.spectate_page, name="spectate"))
