"""A match's replay file, its frames file and the verdict of re-deriving its result."""

from __future__ import annotations

from django.core.files.storage import Storage, storages
from django.db import models

from lobby.matchmaking.models import Match


class ReplayStorage(Storage):
    """The "replays" alias of STORAGES (REPLAY_STORAGE), looked up at each use: a field's
    storage is fixed when the model class is built, the alias's backend is not (settings
    read at start, `override_settings` in tests)."""


for _name in ("save", "open", "delete", "exists", "size", "url", "path", "listdir",
              "generate_filename", "get_available_name", "get_valid_name",
              "get_alternative_name", "get_accessed_time", "get_created_time",
              "get_modified_time"):
    def _proxy(self, *args, _name=_name, **kwargs):
        return getattr(storages["replays"], _name)(*args, **kwargs)
    setattr(ReplayStorage, _name, _proxy)


_storage = ReplayStorage()


def replay_storage() -> Storage:
    return _storage


def replay_name(instance: MatchReplay, filename: str) -> str:
    return f"replays/{instance.match_id}.replay"


def frames_name(instance: MatchReplay, filename: str) -> str:
    return f"frames/{instance.match_id}.frames"


class MatchReplay(models.Model):
    PENDING, VERIFIED, DISPUTED, UNVERIFIABLE, MISSING = (
        "pending", "verified", "disputed", "unverifiable", "missing")
    VERDICTS = [
        (PENDING, "pending (not verified yet)"),
        (VERIFIED, "verified (the replay re-derives the result)"),
        (DISPUTED, "disputed (the result is not its replay's)"),
        (UNVERIFIABLE, "unverifiable (the replay is truncated)"),
        (MISSING, "missing (a result without its replay)"),
    ]

    match = models.OneToOneField(Match, on_delete=models.CASCADE, primary_key=True,
                                 related_name="replay")
    file = models.FileField(storage=replay_storage, upload_to=replay_name, max_length=200,
                            blank=True)
    size = models.PositiveIntegerField(default=0, help_text="bytes of the replay file")
    sha256 = models.CharField(max_length=64, blank=True)
    truncated = models.BooleanField(null=True, help_text="stopped at its size bound "
                                    "(unknown until loaded)")
    uploaded_at = models.DateTimeField(null=True, blank=True)
    frames = models.FileField(storage=replay_storage, upload_to=frames_name, max_length=200,
                              blank=True)
    frames_size = models.PositiveIntegerField(default=0)
    verdict = models.CharField(max_length=12, choices=VERDICTS, default=PENDING, db_index=True)
    detail = models.TextField(blank=True, help_text="why disputed: the differences, or the error")
    result_at = models.DateTimeField(null=True, blank=True, help_text="the node's result came")
    verified_at = models.DateTimeField(null=True, blank=True)
    verify_seconds = models.FloatField(null=True, blank=True)
    rated = models.BooleanField(default=False, help_text="its rating changes were applied")
    claimed_until = models.FloatField(default=0, help_text="a verifier works on it until")
    purged_at = models.DateTimeField(null=True, blank=True, help_text="files removed "
                                     "(REPLAY_RETENTION_DAYS)")

    class Meta:
        verbose_name = "replay"

    def __str__(self) -> str:
        return f"{self.match_id} [{self.verdict}]"
