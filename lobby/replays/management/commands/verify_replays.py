"""`manage.py verify_replays`: re-derive pending results from their replays (docs/lobby.md,
"Replays"). One pass by default; `--loop` keeps going (scale mode's verifier process,
beside `run_matcher`); `--match ID` re-verifies one match whatever its verdict."""

import time

from django.core.management.base import BaseCommand
from django.db import DatabaseError, connection

from lobby.replays import services
from lobby.replays.models import MatchReplay


class Command(BaseCommand):
    help = "Verify pending match results against their replays (and build their frames)."

    def add_arguments(self, parser):
        parser.add_argument("--loop", action="store_true", help="keep verifying")
        parser.add_argument("--interval", type=float, default=5.0,
                            help="seconds between passes with nothing pending (--loop)")
        parser.add_argument("--match", default="", help="verify this match again")
        parser.add_argument("--purge", action="store_true",
                            help="also remove files past REPLAY_RETENTION_DAYS")

    def handle(self, *args, loop: bool, interval: float, match: str, purge: bool, **options):
        if match:
            MatchReplay.objects.filter(pk=match).update(verdict=MatchReplay.PENDING,
                                                        claimed_until=0)
            verdict = services.verify_match(match)
            self.stdout.write(f"{match}: {verdict}")
            return
        while True:
            try:
                total = 0
                while n := services.verify_pending():
                    total += n
                if purge:
                    services.purge_expired()
                if total or not loop:   # a loop says nothing while idle
                    self.stdout.write(f"{total} verified, {services.pending_count()} pending")
            except DatabaseError as exc:
                if not loop:
                    raise
                self.stderr.write(f"database error: {exc}; retrying")
                connection.close()
            if not loop:
                return
            time.sleep(interval)
