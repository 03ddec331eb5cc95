"""Every user gets a profile, whoever creates it (sign-up, guest, admin, createsuperuser)."""

from django.conf import settings
from django.db.models.signals import post_save
from django.dispatch import receiver

from .models import Profile


@receiver(post_save, sender=settings.AUTH_USER_MODEL)
def create_profile(sender, instance, created: bool, **kwargs) -> None:
    if created:
        Profile.objects.create(user=instance, guest=getattr(instance, "_arena_guest", False))
