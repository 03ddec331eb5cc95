"""Accounts: guests, sign-up, rate-limited login, guest claim, profile, and their JSON API."""

from __future__ import annotations

import secrets
import time

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import get_user_model, login, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.db import IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse_lazy
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_POST

from lobby.api import api_view

from . import ratelimit
from .forms import ClaimForm, SignUpForm
from .middleware import GUEST_SEEN

User = get_user_model()


def create_guest(*, signing_in: bool = False) -> User:
    """A new guest: random name, no usable password (it can be claimed later). With
    `signing_in` (the caller signs it in next), its `last_login` is written by the INSERT,
    not by an UPDATE at sign-in (signals.update_last_login)."""
    for _ in range(5):
        user = User(username=f"guest-{secrets.token_hex(4)}")
        user.set_unusable_password()
        user._arena_guest = True  # read by signals.create_profile
        if signing_in:
            user.last_login = user.date_joined
            user._arena_last_login_saved = True  # read by signals.update_last_login
        try:
            with transaction.atomic():
                user.save()
            return user
        except IntegrityError:  # name collision: draw again
            continue
    raise RuntimeError("could not draw a free guest name")


def sign_in_guest(request: HttpRequest) -> User:
    """The signed-in user if any, else a new guest signed in on this session.

    Raises ratelimit.GuestLimited when this address created too many guests lately."""
    if request.user.is_authenticated:
        return request.user
    ratelimit.count_new_guest(request)
    user = create_guest(signing_in=True)
    login(request, user, backend="django.contrib.auth.backends.ModelBackend")
    guest_session(request)
    return user


def guest_session(request: HttpRequest) -> None:
    """A guest's session expires after GUEST_SESSION_AGE idle seconds (middleware.py keeps
    an active one alive), not Django's two weeks."""
    request.session.set_expiry(settings.GUEST_SESSION_AGE)
    request.session[GUEST_SEEN] = int(time.time())


GUEST_LIMITED = "too many new guests from this address; retry later, or sign up"


def home(request: HttpRequest) -> HttpResponse:
    from lobby import games
    from lobby.matchmaking.services import queue_state
    from lobby.ratings.services import all_time_board, rating_of
    from lobby.realtime.events import live_counts

    state = queue_state(request.user) if request.user.is_authenticated else None
    game = games.game(games.default_game())  # the default mode's game (lobby/games.py)
    top = all_time_board(game.name)[:5]
    rating = rating_of(request.user, game.name) if request.user.is_authenticated else None
    return render(request, "accounts/home.html", {"state": state, "top": top, "game": game,
                                                  "rating": rating, "live": live_counts()})


@require_POST
def guest_play(request: HttpRequest) -> HttpResponse:
    """The "Play as guest" button: sign in a guest and put them in the queue."""
    from lobby.matchmaking.services import QueueError, join_queue

    try:
        user = sign_in_guest(request)
    except ratelimit.GuestLimited:
        return ratelimit.too_many(GUEST_LIMITED.capitalize() + ".", settings.GUEST_WINDOW)
    try:
        join_queue(user, None)
    except QueueError as exc:
        messages.info(request, str(exc))
    return redirect("queue")


def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated and request.user.profile.guest:
        return redirect("claim")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome to the arena, {user.username}!")
        return redirect("home")
    return render(request, "accounts/signup.html", {"form": form})


class ArenaLoginView(LoginView):
    """Django's login view with the rate limit of accounts/ratelimit.py (429 when hit)."""

    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if ratelimit.begin_login(request):
            context = self.get_context_data(form=self.form_class(request), rate_limited=True)
            response = self.render_to_response(context, status=429)
            response["Retry-After"] = str(settings.LOGIN_FAILURE_WINDOW)
            return response
        return super().post(request, *args, **kwargs)


class ArenaPasswordChangeView(PasswordChangeView):
    template_name = "accounts/password_change.html"
    success_url = reverse_lazy("home")

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.user.is_authenticated and request.user.profile.guest:
            return redirect("claim")  # a guest has no password yet: claim first
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form) -> HttpResponse:
        messages.success(self.request, "Password changed.")
        return super().form_valid(form)


@login_required
def claim(request: HttpRequest) -> HttpResponse:
    """Turn the signed-in guest into a regular account, keeping rating and history."""
    if not request.user.profile.guest:
        return redirect("profile", username=request.user.username)
    form = ClaimForm(request.user, request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        update_session_auth_hash(request, user)
        request.session.set_expiry(None)  # an account's session: Django's default age
        request.session.pop(GUEST_SEEN, None)
        messages.success(request, f"Account saved: you are now {user.username}.")
        return redirect("profile", username=user.username)
    return render(request, "accounts/claim.html", {"form": form})


def profile(request: HttpRequest, username: str) -> HttpResponse:
    """Per game: rating, rank, totals and the game's own result columns; recent matches."""
    from lobby.ratings.services import player_games, recent_matches

    user = get_object_or_404(User.objects.select_related("profile"), username=username)
    return render(request, "accounts/profile.html", {
        "player": user, "prof": user.profile, "games": player_games(user),
        "recent": recent_matches(user), "is_me": request.user == user,
    })


# --- JSON API -----------------------------------------------------------------------

@ensure_csrf_cookie
@api_view(("GET",))
def api_csrf(request: HttpRequest) -> JsonResponse:
    from django.middleware.csrf import get_token

    return JsonResponse({"csrf": get_token(request)})


@api_view(("POST",))
def api_guest(request: HttpRequest) -> JsonResponse:
    """Sign in a new guest (a session already signed in answers its own user)."""
    try:
        user = sign_in_guest(request)
    except ratelimit.GuestLimited:
        response = JsonResponse({"error": GUEST_LIMITED}, status=429)
        response["Retry-After"] = str(settings.GUEST_WINDOW)
        return response
    return JsonResponse({"user_id": user.id, "username": user.username})


@api_view(("GET",), login=True)
def api_me(request: HttpRequest) -> JsonResponse:
    from lobby import games
    from lobby.ratings.services import rating_of, ratings_json

    prof = request.user.profile
    # "rating": in the default mode's game; "ratings": every game rated in; games/wins: all
    return JsonResponse({"user_id": request.user.id, "username": request.user.username,
                         "rating": round(rating_of(request.user, games.default_game()), 1),
                         "ratings": ratings_json(request.user), "guest": prof.guest,
                         "games": prof.games, "wins": prof.wins})
