"""`manage.py housekeeping`: remove expired sessions and never-played guests now."""

from django.core.management.base import BaseCommand

from lobby.accounts.housekeeping import clean


class Command(BaseCommand):
    help = ("Remove expired sessions, guests that never played older than "
            "GUEST_UNPLAYED_MAX_AGE, and old rate-limit rows (each lobby process also does "
            "it every HOUSEKEEPING_INTERVAL seconds).")

    def handle(self, *args, **options) -> None:
        done = clean()
        self.stdout.write(" ".join(f"{k}={v}" for k, v in done.items()))
