from django.urls import path

from . import views, watch

urlpatterns = [
    path("api/internal/replays/<str:match_id>", views.upload, name="node_replay"),
    path("matches/<str:match_id>/replay.frames", views.frames, name="match_frames"),
    path("matches/<str:match_id>/replay.replay", views.replay_file, name="match_replay"),
    path("matches/<str:match_id>/replay/", watch.watch, name="watch_replay"),
]
