from django.contrib.auth.views import LogoutView
from django.urls import path

from . import counters, views

urlpatterns = [
    path("", views.home, name="home"),
    path("guest/", views.guest_play, name="guest_play"),
    path("accounts/signup/", views.signup, name="signup"),
    path("accounts/login/", views.ArenaLoginView.as_view(), name="login"),
    path("accounts/logout/", LogoutView.as_view(), name="logout"),
    path("accounts/password/", views.ArenaPasswordChangeView.as_view(), name="password_change"),
    path("accounts/claim/", views.claim, name="claim"),
    path("players/<str:username>/", views.profile, name="profile"),
    path("api/csrf", views.api_csrf, name="api_csrf"),
    path("api/guest", views.api_guest, name="api_guest"),
    path("api/me", views.api_me, name="api_me"),
    path("metrics", counters.metrics, name="metrics"),
]
