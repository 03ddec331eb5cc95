"""`manage.py purge_replays`: remove the replay and frames files of matches older than
REPLAY_RETENTION_DAYS (the verdict stays). The embedded lobby's verifier does it hourly."""

from django.core.management.base import BaseCommand

from lobby.replays.services import purge_expired


class Command(BaseCommand):
    help = "Remove replay files past REPLAY_RETENTION_DAYS."

    def handle(self, *args, **options):
        self.stdout.write(f"{purge_expired()} replays removed")
