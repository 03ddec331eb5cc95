"""`manage.py run_matcher`: the matcher loop for production (web requests also run passes)."""

import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection
from redis import RedisError

from lobby.matchmaking.services import run_pass
from lobby.realtime.events import Notifier


class Command(BaseCommand):
    help = "Run matcher passes (expire nodes and matches, form matches) every --interval s."

    def add_arguments(self, parser) -> None:
        parser.add_argument("--interval", type=float, default=0.5)
        parser.add_argument("--once", action="store_true", help="one pass, then exit")

    def handle(self, *args, interval: float, once: bool, **options) -> None:
        notifier = Notifier()  # matched, queue and live events on the bus (lobby.realtime)
        while True:
            try:
                now = time.time()
                figures = run_pass(now, force=True)
                notifier.after_pass(now, figures)
            except (RedisError, DatabaseError) as exc:
                # Redis or the database unreachable: the loop outlives it and tries again
                # at the next interval (a fresh database connection then).
                if once:
                    raise
                self.stderr.write(f"matcher pass failed: {type(exc).__name__}: {exc}")
                if isinstance(exc, DatabaseError):
                    connection.close()
                figures = None
            if figures and (figures.get("matches") or figures.get("nodes_dropped")
                            or figures.get("matches_aborted")):
                self.stdout.write(str(figures))
            if once:
                return
            time.sleep(interval)
