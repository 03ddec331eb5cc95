"""Every user gets a profile, whoever creates it (sign-up, guest, admin, createsuperuser);
a sign-in records its time (`last_login`) as Django's receiver does, but for a new guest,
whose INSERT already wrote it."""

from django.conf import settings
from django.contrib.auth import models as auth_models
from django.contrib.auth.signals import user_logged_in
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created: bool, **kwargs) -> None:
    if created:
        Profile.objects.create(user=instance, guest=getattr(instance, "_arena_guest", False))


def update_last_login(sender, user, **kwargs) -> None:
    """Django's `update_last_login` (an UPDATE through `save`, with the model's signals),
    except for a guest created by this very sign-in (`views.create_guest(signing_in=True)`),
    whose `last_login` its INSERT wrote a moment ago."""
    if getattr(user, "_arena_last_login_saved", False):
        user._arena_last_login_saved = False  # a later sign-in of this object updates it
        return
    auth_models.update_last_login(sender, user, **kwargs)


def connect() -> None:
    """In place of Django's receiver (connected by django.contrib.auth's ready, which runs
    before this app's: INSTALLED_APPS order)."""
    if user_logged_in.disconnect(dispatch_uid="update_last_login"):
        user_logged_in.connect(update_last_login, dispatch_uid="update_last_login")
