from django.urls import path

from . import handoff, views

urlpatterns = [
    path("queue/", views.queue_page, name="queue"),
    path("queue/join/", views.queue_join, name="queue_join"),
    path("queue/cancel/", views.queue_cancel, name="queue_cancel"),
    path("game/", views.game_page, name="game"),
    path("api/queue", views.api_queue, name="api_queue"),
    path("api/modes", views.api_modes, name="api_modes"),
    path("api/presence", views.api_presence, name="api_presence"),
    path("api/internal/nodes/heartbeat", views.heartbeat, name="node_heartbeat"),
    path("api/internal/handoff", handoff.target, name="handoff_target"),
    path("api/internal/handoff/commit", handoff.commit, name="handoff_commit"),
    path("api/internal/handoff/owner", handoff.owner, name="handoff_owner"),
]
