"""What the lobby publishes on the bus (`lobby.shared.bus`), and when.

Channels: `user:<id>` (one player's: matched, result, queue) and `live` (everyone's: the
matches in progress). An event never carries a seat token: the player's own stream adds a
fresh one when it delivers `matched` (`lobby.realtime.stream`, from the event's fields,
no database read), so a token is only ever issued to its owner.

Publishing never fails the caller: the state is in the database either way (a stream that
reconnects reads it first), so an unreachable Redis is logged, not raised.
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from django.conf import settings
from django.db.models import Count

from lobby import shared
from lobby.matchmaking.models import Match, MatchPlayer, Ticket
from lobby.matchmaking.services import WAIT_MESSAGES, to_dt
from lobby.shared.bus import bus
from lobby.shared.nodes import OK, NodeInfo, mode_state

log = logging.getLogger("lobby.realtime")

LIVE = "live"
LIVE_MAX = 50  # matches listed in a `live` event (the most recent)
QUEUE_EVENTS_MAX = 2000  # `queue` events one pass publishes at most (positions changed)


def user_channel(user_id: int) -> str:
    return f"user:{user_id}"


def publish(channel: str, data: dict[str, Any]) -> str | None:
    try:
        return bus().publish(channel, data)
    except Exception as exc:  # noqa: BLE001 - the state stays readable in the database
        log.warning("event not published on %s (%s): %s", channel, data.get("type"), exc)
        return None


def node_rooms(now: float, nodes: list[NodeInfo] | None = None) -> dict[str, dict[str, Any]]:
    """Match id -> `{"top", "ends"}` from the live nodes' last heartbeats (`matches`):
    the leading players `[[name, score], ...]` and the Unix time the match runs out.
    `nodes`: the live nodes, when the caller has just read them."""
    rooms: dict[str, dict[str, Any]] = {}
    for node in shared.state().nodes.alive(now) if nodes is None else nodes:
        for room in node.live:
            rooms[room["match_id"]] = {"top": room["top"],
                                       "ends": round(node.last_seen + room["left"], 1)}
    return rooms


def live_signature(live: tuple[dict, ...] | list[dict]) -> tuple:
    """What of a node's rooms Live now shows that the browser cannot count down itself:
    which rooms, and their leading scores."""
    return tuple((r["match_id"], tuple(map(tuple, r["top"]))) for r in live)


def live_counts(waiting: int | None = None) -> dict[str, int]:
    """Matches in progress, players seated in them, tickets waiting (the home page's
    figures; the `live` event carries the same). `waiting`: when the caller has just
    counted them."""
    totals = Match.objects.filter(status=Match.ACTIVE, node__isnull=False).aggregate(
        n=Count("match_id"))
    return {"in_progress": totals["n"],
            "players": MatchPlayer.objects.filter(active=True).count(),
            "waiting": Ticket.objects.filter(status=Ticket.WAITING).count()
            if waiting is None else waiting}


def live_state(now: float | None = None, *, nodes: list[NodeInfo] | None = None,
               waiting: int | None = None) -> dict[str, Any]:
    """The `live` event: matches in progress (the most recent LIVE_MAX, with their
    players and, from their node's heartbeat, `top` scores, `ends` (Unix time) and `left`
    (seconds; both null before the node reported the room)), players seated, tickets
    waiting."""
    now = now or time.time()
    rooms = node_rooms(now, nodes)
    matches = list(Match.objects.filter(status=Match.ACTIVE, node__isnull=False)
                   .order_by("-created_at").values("match_id", "game", "mode", "seats", "bots",
                                                   "created_at", "node__node_id")[:LIVE_MAX])
    names: dict[str, list[str]] = {}
    for match_id, username in (MatchPlayer.objects.filter(match_id__in=[m["match_id"] for m in matches])
                               .order_by("id").values_list("match_id", "user__username")):
        names.setdefault(match_id, []).append(username)
    return {"type": "live", "matches": [
        {"match_id": m["match_id"], "game": m["game"], "mode": m["mode"],
         "players": names.get(m["match_id"], []), "bots": m["bots"],
         "node": m["node__node_id"], "started": m["created_at"].timestamp(),
         "elapsed": round(now - m["created_at"].timestamp(), 1),
         "top": rooms.get(m["match_id"], {}).get("top", []),
         "ends": rooms.get(m["match_id"], {}).get("ends"),
         "left": max(0, round(rooms[m["match_id"]]["ends"] - now))
         if m["match_id"] in rooms else None} for m in matches], **live_counts(waiting)}


def publish_live() -> None:
    publish(LIVE, live_state())


def publish_result(match_id: str) -> None:
    """To each human of a reported match: its result and rating change; then `live`."""
    match = Match.objects.filter(pk=match_id).values("game", "mode", "status").first()
    if match is None:
        return
    for seat in MatchPlayer.objects.filter(match_id=match_id).values(
            "user_id", "placement", "score", "rating_before", "rating_after"):
        before, after = seat["rating_before"], seat["rating_after"]
        publish(user_channel(seat["user_id"]), {
            "type": "result", "match_id": match_id, **match, "placement": seat["placement"],
            "score": seat["score"], "rating_before": before, "rating_after": after,
            "change": None if before is None or after is None else round(after - before, 1)})
    publish_live()


class Notifier:
    """After each matcher pass of this process: `matched` to the players of the matches it
    formed, `queue` to each waiting player whose position or capacity problem changed, and
    `live` when matches started or were aborted or the number of tickets waiting changed
    (the home page's players online). Returns when the next pass is due.

    One read each of the waiting tickets and of the live nodes serves all three: the
    tickets are the queue's positions and the `live` count, the nodes the queue's mode
    checks and `live`'s rooms."""

    def __init__(self) -> None:
        self.positions: dict[int, tuple] = {}  # user id -> (mode, position, code) published
        self.waiting: int | None = None  # tickets waiting at the last `live` this published

    def after_pass(self, now: float, figures: dict[str, Any] | None) -> float | None:
        if figures and figures.get("matches"):  # this pass's matches: created_at == now
            for row in MatchPlayer.objects.filter(match__created_at=to_dt(now)).values(
                    "match_id", "user_id", "ticket__created_at", "match__node__node_id",
                    "match__node__url", "match__game", "match__mode", "match__seats",
                    "match__bots"):
                self.positions.pop(row["user_id"], None)
                queued = row["ticket__created_at"]
                publish(user_channel(row["user_id"]), {
                    "type": "matched", "status": "matched", "match_id": row["match_id"],
                    "waited": round(now - queued.timestamp(), 1) if queued else 0,
                    "node_id": row["match__node__node_id"], "node_url": row["match__node__url"],
                    "game": row["match__game"], "mode": row["match__mode"],
                    "seats": row["match__seats"], "bots": row["match__bots"]})
        rows = list(Ticket.objects.filter(status=Ticket.WAITING).order_by("created_at", "id")
                    .values_list("user_id", "mode", "created_at"))
        nodes = shared.state().nodes.alive(time.time())
        if (figures and (figures.get("matches") or figures.get("matches_aborted"))
                or len(rows) != self.waiting):
            self.waiting = len(rows)
            publish(LIVE, live_state(nodes=nodes, waiting=len(rows)))
        return self.publish_queue(now, rows, nodes)

    def publish_queue(self, now: float, rows: list[tuple], nodes: list[NodeInfo]) -> float | None:
        """`queue` events to the waiting tickets' players (`rows`: user id, mode, created
        at, in queue order; `nodes`: the live ones); seconds until a waiting ticket reaches
        MATCH_MAX_WAIT (the next pass that surely forms a match), None when nobody waits."""
        codes: dict[str, str] = {}
        place: dict[str, int] = {}
        seen: set[int] = set()
        sent, due = 0, None
        for user_id, mode, created in rows:
            seen.add(user_id)
            if mode not in codes:
                codes[mode] = mode_state(nodes, mode)
            place[mode] = place.get(mode, 0) + 1
            waited = now - created.timestamp()
            left = max(0.0, settings.MATCH_MAX_WAIT - waited)
            due = left if due is None else min(due, left)
            key = (mode, place[mode], codes[mode])
            if self.positions.get(user_id) == key or sent >= QUEUE_EVENTS_MAX:
                continue
            self.positions[user_id] = key
            sent += 1
            event = {"type": "queue", "mode": mode, "position": place[mode],
                     "waited": round(waited, 1),
                     "estimated_wait": math.ceil(left) if codes[mode] == OK else None}
            if codes[mode] != OK:
                event.update(code=codes[mode], error=WAIT_MESSAGES[codes[mode]])
            publish(user_channel(user_id), event)
        for user_id in set(self.positions) - seen:  # left the queue
            del self.positions[user_id]
        return due
