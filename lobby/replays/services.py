"""Replays in the lobby (docs/lobby.md, "Replays"): the node's upload, the result's arrival,
verification (the result re-derived from the replay, outside any request), the frames file
for watching, and retention.

A match's verdict: `pending` until verified; `verified` (the replay re-derives the posted
result: its rating changes are applied then, once), `disputed` (it does not, or the file
is not a valid replay of this match: no rating change), `unverifiable` (the replay stops
at its size bound), `missing` (a result without a replay). With `REPLAY_REQUIRED` off,
ratings are applied when the result arrives, as before replays, and a dispute only flags
the match.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.files.base import ContentFile
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone

from engine.frames import build_frames, verify_and_build
from engine.recording import MAX_FILE_BYTES, load_replay
from engine.replay import ReplayError, compare
from lobby.matchmaking.models import Match
from lobby.ratings.models import ResultReport

from .models import MatchReplay

log = logging.getLogger("lobby.replays")

MAX_UPLOAD_BYTES = MAX_FILE_BYTES   # a replay upload above it: 413
CLAIM_SECONDS = 300.0               # a verifier that dies frees its match after this
BATCH = 20                          # matches per verification pass
MAX_DETAIL = 4000                   # characters of the differences kept


class UploadError(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


def wake() -> None:
    """Tell this process's background verifier that work came in (no-op without one)."""
    from . import verifier
    verifier.wake()


# --- the node's upload, the result ---------------------------------------------------------

def store_upload(match_id: str, node_id: str, data: bytes) -> dict:
    """Store a node's replay file for `match_id` (idempotent: the same bytes again are a
    duplicate; other bytes once one is stored: 409). Checked here: the match exists and is
    this node's. The file itself is checked by the verifier (`load_replay`)."""
    match = Match.objects.select_related("node").filter(pk=match_id).first()
    if match is None:
        raise UploadError(404, "unknown match")
    if match.node is None or match.node.node_id != node_id:
        raise UploadError(403, "this match is not assigned to this node")
    digest = hashlib.sha256(data).hexdigest()
    with transaction.atomic():
        row, _ = MatchReplay.objects.select_for_update().get_or_create(match=match)
        if row.sha256:
            if row.sha256 == digest:
                return {"ok": True, "duplicate": True}
            raise UploadError(409, "another replay is stored for this match")
        if row.purged_at is not None:
            return {"ok": True, "duplicate": True, "purged": True}
        row.file.save("replay", ContentFile(data), save=False)
        row.size, row.sha256, row.uploaded_at = len(data), digest, timezone.now()
        if row.verdict == MatchReplay.MISSING:   # the result came first
            row.verdict = MatchReplay.PENDING
        row.save()
        transaction.on_commit(wake)
    return {"ok": True, "duplicate": False}


# A verified match whose ratings waited for verification has them now (sent after the
# commit, `match_id=`): the live lobby publishes the players' result events on it.
ratings_applied = Signal()


def defer_ratings() -> bool:
    """Whether a result's rating changes wait for its verification (REPLAY_REQUIRED)."""
    return bool(settings.REPLAY_REQUIRED)


def result_ingested(match: Match, *, rated: bool) -> None:
    """Called by results ingestion (in its transaction) once `match` is closed by its
    node's result; `rated`: its ratings were applied already (REPLAY_REQUIRED off)."""
    row, _ = MatchReplay.objects.select_for_update().get_or_create(match=match)
    row.result_at, row.rated = timezone.now(), rated
    if not row.sha256:
        row.verdict = MatchReplay.MISSING
    row.save(update_fields=["result_at", "rated", "verdict"])
    transaction.on_commit(wake)


# --- verification ---------------------------------------------------------------------------

def verify_pending(limit: int = BATCH, now: float | None = None) -> int:
    """Verify up to `limit` pending matches (result and replay in), oldest result first;
    each is claimed first, so several verifiers (processes) share the work. Returns how
    many were verified."""
    now = time.time() if now is None else now
    pks = list(MatchReplay.objects.filter(verdict=MatchReplay.PENDING, result_at__isnull=False,
                                          claimed_until__lt=now)
               .exclude(sha256="").order_by("result_at").values_list("pk", flat=True)[:limit])
    done = 0
    for pk in pks:
        claimed = (MatchReplay.objects.filter(pk=pk, verdict=MatchReplay.PENDING,
                                              claimed_until__lt=now)
                   .update(claimed_until=now + CLAIM_SECONDS))
        if claimed:
            verify_match(pk)
            done += 1
    return done


def pending_count() -> int:
    return (MatchReplay.objects.filter(verdict=MatchReplay.PENDING, result_at__isnull=False)
            .exclude(sha256="").count())


@dataclass(frozen=True)
class Judgement:
    verdict: str
    detail: str
    truncated: bool | None
    frames: bytes | None   # the frames file, when the replay loads and runs


def judge(data: bytes, *, match_id: str, game: str, mode: str, posted: dict) -> Judgement:
    """The verdict on `posted` (the node's result body) given its replay file `data`, and
    the frames file: one run of the match (`engine.frames.verify_and_build`). No database:
    `python -m lobby.replays.bench` times exactly this."""
    truncated: bool | None = None
    try:
        replay = load_replay(data)
        truncated = replay.truncated
        if (replay.match_id, replay.game, replay.mode) != (match_id, game, mode):
            raise ReplayError(f"the replay is of {replay.match_id!r} ({replay.game}/"
                              f"{replay.mode}), not of this match ({game}/{mode})")
        if replay.truncated:
            return Judgement(MatchReplay.UNVERIFIABLE, f"the replay stops at tick "
                             f"{replay.end_tick} of {replay.ticks}: its size bound",
                             True, build_frames(replay))
        verified, frames = verify_and_build(replay)
    except ReplayError as exc:
        return Judgement(MatchReplay.DISPUTED, str(exc)[:MAX_DETAIL], truncated, None)
    diffs = compare(verified, posted)
    return Judgement(MatchReplay.DISPUTED if diffs else MatchReplay.VERIFIED,
                     "\n".join(diffs)[:MAX_DETAIL], False, frames)


def verify_match(match_id: str) -> str:
    """Re-derive `match_id`'s result from its replay, store the frames file, set the
    verdict and (verified, ratings deferred) apply the rating changes. Returns the verdict."""
    row = MatchReplay.objects.select_related("match").get(pk=match_id)
    match = row.match
    report = ResultReport.objects.filter(match_id=match_id).first()
    started = time.perf_counter()
    try:
        with row.file.open("rb") as f:
            data = f.read(MAX_UPLOAD_BYTES + 1)
    except OSError as exc:   # the storage failed: try again at a later pass
        log.warning("replay of %s unreadable (%s); retried later", match_id, exc)
        MatchReplay.objects.filter(pk=match_id).update(claimed_until=time.time() + 60)
        return MatchReplay.PENDING
    if hashlib.sha256(data).hexdigest() != row.sha256:
        result = Judgement(MatchReplay.DISPUTED, "the stored file is not the one uploaded "
                           "(checksum)", None, None)
    else:
        result = judge(data, match_id=match_id, game=match.game, mode=match.mode,
                       posted=report.body if report else {})
    seconds = time.perf_counter() - started
    if result.frames is not None and not row.frames:
        row.frames.save("frames", ContentFile(result.frames), save=False)
        row.frames_size = len(result.frames)
    verdict, detail = result.verdict, result.detail
    with transaction.atomic():
        locked = MatchReplay.objects.select_for_update().get(pk=match_id)
        row.rated = locked.rated
        row.verdict, row.detail, row.truncated = verdict, detail, result.truncated
        row.verified_at, row.verify_seconds, row.claimed_until = timezone.now(), seconds, 0
        if verdict == MatchReplay.VERIFIED and not row.rated:
            _apply_ratings(match_id)
            row.rated = True
            transaction.on_commit(lambda: ratings_applied.send(None, match_id=match_id))
        row.save()
    level = logging.WARNING if verdict == MatchReplay.DISPUTED else logging.INFO
    log.log(level, "match %s %s in %.2f s%s", match_id, verdict, seconds,
            f": {detail.splitlines()[0]}" if detail else "")
    return verdict


def _apply_ratings(match_id: str) -> None:
    """The rating changes of a verified match whose ratings waited (in the caller's
    transaction): what results ingestion would have applied."""
    from lobby.ratings.services import _apply

    match = Match.objects.select_for_update().get(pk=match_id)
    if match.status != Match.FINISHED or not match.result:
        return
    seats = {s.user_id: s for s in match.players.select_for_update()}
    humans = [p for p in match.result if not p["bot"] and p["user_id"] in seats]
    _apply(match, seats, humans, {"status": match.status}, len(match.result), rate=True)


# --- retention --------------------------------------------------------------------------------

def purge_expired(now=None) -> int:
    """Remove the files (replay and frames) of matches uploaded more than
    REPLAY_RETENTION_DAYS ago; the verdict stays. 0 days: keep them. Returns how many."""
    days = settings.REPLAY_RETENTION_DAYS
    if days <= 0:
        return 0
    cutoff = (now or timezone.now()) - timedelta(days=days)
    done = 0
    for row in MatchReplay.objects.filter(uploaded_at__lt=cutoff, purged_at__isnull=True):
        for field in (row.file, row.frames):
            if field:
                field.delete(save=False)
        row.frames_size = 0
        row.purged_at = timezone.now()
        row.save(update_fields=["file", "frames", "frames_size", "purged_at"])
        done += 1
    return done
