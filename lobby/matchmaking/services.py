"""Queue operations and the matcher pass, on the database.

Concurrency (several worker processes): a player's single waiting ticket and single
active seat are partial unique indexes; a matcher pass holds the pass gate
(`lobby.shared.gate`: the `MatcherState` row lock, or a Redis lock with REDIS_URL) and
locks the waiting tickets it reads, so a cancel either lands before the pass or finds its
ticket matched. Nodes are placed by the registry (`lobby.shared.nodes`).
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import Q

from engine.auth import issue_seat_token
from lobby import games, shared
from lobby.accounts.models import Profile
from lobby.ratings.models import Rating
from lobby.shared.nodes import NO_NODE_FOR_MODE, OK, SERVERS_FULL, UNREACHABLE

from .matcher import Rules, Waiting, form_groups
from .models import NAME_MAX, Match, MatchPlayer, Node, Ticket

log = logging.getLogger("lobby.matchmaking")
CHUNK = 500  # ids per IN (...) clause: well under SQLite's variable limit
NO_NODE = "no game node available"  # a pass with no live node at all
# Why a waiting ticket does not start (GET /api/queue's "error" and "code").
WAIT_MESSAGES = {NO_NODE_FOR_MODE: "no game node available for this mode",
                 SERVERS_FULL: "servers full"}
# A node's silence only counts from when this process could hear it: a lobby restarted less
# than NODE_TIMEOUT ago missed heartbeats while it was down, which does not make the nodes
# dead (their results wait in their outboxes; tests/scale/test_faults.py).
STARTED = time.time()


class QueueError(Exception):
    """A refused queue operation: HTTP status, message and a stable `code`."""

    def __init__(self, status: int, message: str, code: str):
        super().__init__(message)
        self.status, self.code = status, code


def to_dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def chunks(items: list, size: int = CHUNK) -> Iterator[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def rules() -> Rules:
    return Rules(size=settings.MATCH_SIZE or 1, max_wait=settings.MATCH_MAX_WAIT,
                 window_base=settings.RATING_WINDOW_BASE,
                 window_growth=settings.RATING_WINDOW_GROWTH,
                 window_max=settings.RATING_WINDOW_MAX, sizes=games.sizes())


# --- the player's side ----------------------------------------------------------------

def check_mode(mode: Any) -> games.ModeInfo:
    """The offered mode named `mode` (None: the default one); QueueError 400 otherwise."""
    mode = games.default_mode() if mode is None else mode
    if not isinstance(mode, str) or len(mode) > NAME_MAX:
        raise QueueError(400, f"mode must be a mode name of at most {NAME_MAX} characters",
                         "bad_mode")
    info = games.mode(mode)
    if info is None:
        raise QueueError(400, f"unknown mode; one of {', '.join(games.offered())}",
                         "unknown_mode")
    return info


def join_queue(user, mode: Any) -> Ticket:
    """Queue a ticket; QueueError 400 (bad mode), 409 (no live node runs the mode, already
    queued, already in a match)."""
    info = check_mode(mode)
    try:
        why = shared.state().nodes.mode_state(info.name, time.time())
    except UNREACHABLE:  # Redis down: the ticket (a row) is taken, the matcher checks later
        why = OK
    if why == NO_NODE_FOR_MODE:
        raise QueueError(409, f"no game node available for mode {info.name}; try another "
                         "mode or later", NO_NODE_FOR_MODE)
    rating = (Rating.objects.filter(user=user, game=info.game)
              .values_list("rating", flat=True).first())
    with transaction.atomic():
        # Row lock on the profile: one queue operation per player at a time (PostgreSQL;
        # SQLite's BEGIN IMMEDIATE already serializes every write transaction).
        if connection.features.has_select_for_update:
            Profile.objects.select_for_update().filter(user=user).values_list("pk").first()
        try:
            ticket = Ticket.objects.create(user=user, mode=info.name,
                                           rating=settings.RATING_START if rating is None
                                           else rating)
        except IntegrityError:  # one_waiting_ticket_per_user; leaving rolls back
            raise QueueError(409, "already queued", "already_queued") from None
        # The seat check comes after the insert: a pass matching this player's previous
        # ticket holds that row, so the insert waits for the pass's commit and this read
        # then sees its seat (checked before the insert, the seat could land in between).
        if MatchPlayer.objects.filter(user=user, active=True).exists():
            raise QueueError(409, "already in a match", "in_match")  # rolls the ticket back
        return ticket


def cancel_queue(user) -> str:
    """Cancel the waiting ticket: "cancelled", or "none" if there was none."""
    now = time.time()
    with transaction.atomic():
        n = Ticket.objects.filter(user=user, status=Ticket.WAITING).update(
            status=Ticket.CANCELLED, closed_at=to_dt(now))
        if n:
            return "cancelled"
        if MatchPlayer.objects.filter(user=user, active=True).exists():
            raise QueueError(409, "already matched: join the match or wait for its end",
                             "matched")
    return "none"


# The columns of a player's active seat that GET /api/queue answers (queue_state).
SEAT_FIELDS = ("match_id", "match__created_at", "ticket__created_at", "match__node__node_id",
               "match__node__url", "match__game", "match__mode", "match__seats", "match__bots")


def queue_state(user, now: float | None = None) -> dict[str, Any]:
    """What GET /api/queue answers. A token is only ever issued to its own user.

    Two reads of the columns answered, no model instances (the ORM's per-column work on
    whole rows of four tables was most of this function's cost); no ordering, as a player
    has at most one waiting ticket and one active seat (partial unique indexes)."""
    now = now or time.time()
    # The ticket first, then the seat: a pass closes the ticket and creates the seat in one
    # commit, so a ticket seen closed here has its seat visible below. (Seat first, a pass
    # committing between the two reads made a matched player look "none".)
    ticket = next(iter(Ticket.objects.filter(user_id=user.id, status=Ticket.WAITING)
                       .values_list("id", "mode", "created_at")[:1]), None)
    seat = next(iter(MatchPlayer.objects.filter(user_id=user.id, active=True,
                                                match__node__isnull=False)
                     .values_list(*SEAT_FIELDS)[:1]), None)
    if seat is not None:
        match_id, created, queued, node_id, node_url, game, mode, seats, bots = seat
        token = issue_seat_token(
            settings.SEAT_SECRET, user_id=user.id, name=user.username, match_id=match_id,
            node_id=node_id, now=now, ttl=settings.SEAT_TOKEN_TTL, mode=mode, seats=seats,
            bots=bots)
        waited = (created - queued).total_seconds() if queued else 0
        return {"status": "matched", "waited": round(waited, 1), "match_id": match_id,
                "node_url": node_url, "token": token, "game": game, "mode": mode,
                "seats": seats, "bots": bots}
    if ticket is None:
        return {"status": "none"}
    ticket_id, mode, created = ticket
    state: dict[str, Any] = {"status": "waiting", "ticket_id": ticket_id, "mode": mode,
                             "waited": round(now - created.timestamp(), 1)}
    why = shared.state().nodes.mode_state(mode, now)
    if why != OK:  # the ticket keeps its place; the player is told why nothing starts
        state.update(error=WAIT_MESSAGES[why], code=why)
    return state


# --- expiry ---------------------------------------------------------------------------

def abort_matches(match_ids: Iterable[str], reason: str, now: float) -> int:
    ids = list(match_ids)
    for part in chunks(ids):
        MatchPlayer.objects.filter(match_id__in=part, active=True).update(active=False)
        Match.objects.filter(pk__in=part, status=Match.ACTIVE).update(
            status=Match.ABORTED, reason=reason, ended_at=to_dt(now))
    return len(ids)


def expire(now: float) -> dict[str, int]:
    """Drop nodes silent for NODE_TIMEOUT, abort their matches and matches never reported."""
    believed = list(Node.objects.filter(alive=True).values_list("node_id", flat=True))
    if now - STARTED < settings.NODE_TIMEOUT:
        believed = []
    dead_ids = shared.state().nodes.dead(believed, now)
    dead = list(Node.objects.filter(node_id__in=dead_ids).values_list("id", flat=True))
    aborted = 0
    if dead:
        Node.objects.filter(id__in=dead).update(alive=False, pending=0, pending_rooms=0)
        aborted += abort_matches(Match.objects.filter(node_id__in=dead, status=Match.ACTIVE)
                                 .values_list("pk", flat=True), "node lost", now)
        log.warning("nodes dropped (no heartbeat for %ss): %s", settings.NODE_TIMEOUT, dead)
    stale = Match.objects.filter(status=Match.ACTIVE).filter(
        Q(created_at__lt=to_dt(now - settings.MATCH_MAX_DURATION)) | Q(node__isnull=True))
    aborted += abort_matches(stale.values_list("pk", flat=True), "never reported", now)
    return {"nodes_dropped": len(dead), "matches_aborted": aborted}


# --- the matcher pass -----------------------------------------------------------------

def insert_rows(model: type[models.Model], columns: list[str], rows: list[tuple]) -> None:
    """Bulk insert of plain tuples, no model instances: COPY on PostgreSQL, multi-row
    INSERTs elsewhere."""
    if not rows:
        return
    q = connection.ops.quote_name
    head = f"INSERT INTO {q(model._meta.db_table)} ({', '.join(q(c) for c in columns)}) VALUES "
    one = f"({', '.join(['%s'] * len(columns))})"
    per_statement = min(1000, (connection.features.max_query_params or 65535) // len(columns))
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: the fastest bulk path there
            copy_sql = f"COPY {q(model._meta.db_table)} ({', '.join(q(c) for c in columns)}) FROM STDIN"
            with cursor.cursor.copy(copy_sql) as copy:
                for row in rows:
                    copy.write_row(row)
            return
        for i in range(0, len(rows), per_statement):
            batch = rows[i:i + per_statement]
            cursor.execute(head + ", ".join([one] * len(batch)), [v for r in batch for v in r])


def close_tickets(ids: list[int], status: str, now: float) -> None:
    if connection.vendor == "postgresql":  # one statement, the ids as one array parameter
        with connection.cursor() as cursor:
            cursor.execute(f"UPDATE {Ticket._meta.db_table} SET status = %s, closed_at = %s "
                           "WHERE id = ANY(%s)", [status, to_dt(now), ids])
        return
    for part in chunks(ids):
        Ticket.objects.filter(id__in=part).update(status=status, closed_at=to_dt(now))


def maybe_run_pass(now: float | None = None) -> dict[str, Any] | None:
    """Run a pass unless one ran within MATCHER_INTERVAL (a cheap read decides first)."""
    now = now or time.time()
    if not shared.state().gate.due(now):
        return None
    return run_pass(now)


def run_pass(now: float | None = None, *, force: bool = False) -> dict[str, Any] | None:
    """One matcher pass: expire, group the waiting tickets, create matches, bulk write.

    Returns figures, or None when another process is running a pass (or ran one within
    MATCHER_INTERVAL and `force` is false).
    """
    now = now or time.time()
    started = time.perf_counter()
    registry = shared.state().nodes
    with shared.state().gate.hold(now, force=force) as held:  # in a transaction
        if not held:
            return None
        figures: dict[str, Any] = expire(now)
        # A ticket whose player got a seat meanwhile is void (the constraint is the backstop).
        Ticket.objects.filter(status=Ticket.WAITING, user_id__in=MatchPlayer.objects.filter(
            active=True).values("user_id")).update(status=Ticket.CANCELLED, closed_at=to_dt(now))
        # So is a ticket of a mode no longer offered (the registry or MATCH_MODES changed).
        offered = games.offered()
        Ticket.objects.filter(status=Ticket.WAITING).exclude(mode__in=list(offered)).update(
            status=Ticket.CANCELLED, closed_at=to_dt(now))
        nodes = [n for n in registry.alive(now) if not n.draining and n.fits(1)]
        figures["nodes"] = len(nodes)
        if not nodes:  # nothing can start: leave the tickets alone
            figures.update(matches=0, error=NO_NODE)
            return figures
        marks = {"prepare": time.perf_counter()}
        rows = list(Ticket.objects.select_for_update().filter(status=Ticket.WAITING)
                    .values_list("id", "user_id", "rating", "created_at", "mode"))
        waiting = [Waiting(tid, uid, rating, now - created.timestamp(), mode)
                   for tid, uid, rating, created, mode in rows]
        marks["load"] = time.perf_counter()
        r = rules()
        groups = form_groups(waiting, r)
        marks["group"] = time.perf_counter()
        figures.update(tickets=len(waiting), groups=len(groups))
        matches: list[tuple] = []  # rows for one executemany each: the ORM's per-object
        seats: list[tuple] = []    # cost would dominate a pass of thousands of tickets
        matched_ids: list[int] = []
        created = connection.ops.adapt_datetimefield_value(to_dt(now))
        # atomic, least loaded among the nodes that run the group's mode
        chosen = registry.reserve([len(g) for g in groups], now, [g[0].mode for g in groups])
        marks["reserve"] = time.perf_counter()
        pks = dict(Node.objects.filter(node_id__in={c for c in chosen if c})
                   .values_list("node_id", "id"))
        for group, node_id in zip(groups, chosen, strict=True):
            if node_id is None or node_id not in pks:
                continue  # no node fits it now: the tickets keep waiting
            match_id = secrets.token_hex(8)
            mode = group[0].mode
            matches.append((match_id, offered[mode].game, mode, pks[node_id], Match.ACTIVE,
                            len(group), r.size_of(mode) - len(group), created, ""))
            for t in group:
                seats.append((match_id, t.user_id, t.ticket_id, True, 0, "{}"))
                matched_ids.append(t.ticket_id)
        insert_rows(Match, ["match_id", "game", "mode", "node_id", "status", "seats", "bots",
                            "created_at", "reason"], matches)
        insert_rows(MatchPlayer, ["match_id", "user_id", "ticket_id", "active", "points",
                                  "stats"], seats)
        close_tickets(matched_ids, Ticket.MATCHED, now)
        marks["write"] = time.perf_counter()
    marks["commit"] = time.perf_counter()
    figures.update(matches=len(matches), seats=len(seats),
                   bots=sum(m[6] for m in matches),
                   seconds=round(time.perf_counter() - started, 4),
                   steps={k: round(t - last, 4) for (k, t), last in
                          zip(marks.items(), [started, *marks.values()], strict=False)})
    if len(matches) < len(groups):  # the queue API says why, per mode (queue_state)
        figures["error"] = "some groups found no node (servers full or no node for the mode)"
        figures["unplaced"] = len(groups) - len(matches)
    return figures
