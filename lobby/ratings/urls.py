from django.urls import path

from . import views

urlpatterns = [
    path("leaderboard/", views.leaderboard, name="leaderboard"),
    path("matches/<str:match_id>/", views.match_detail, name="match"),
    path("api/leaderboard", views.api_leaderboard, name="api_leaderboard"),
    path("api/internal/results", views.results, name="node_results"),
]
