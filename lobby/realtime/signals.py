"""Hooks on the matchmaking and ratings models, so that those apps need not know about
the bus: a new ticket wakes the matcher; a result (a node frees seats) publishes the
players' results and wakes it; a verified replay whose ratings waited publishes the results
again, now with the rating changes; a node heartbeat whose rooms or leading scores changed
publishes `live`. All after the commit."""

from __future__ import annotations

from django.db import transaction
from django.db.models.signals import post_save


def _ticket_saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        from .matcher import wake

        transaction.on_commit(wake)


def _result_saved(sender, instance, created: bool, **kwargs) -> None:
    if created:
        from .events import publish_result
        from .matcher import wake

        match_id = instance.match_id

        def after() -> None:
            publish_result(match_id)
            wake()

        transaction.on_commit(after)


# node id -> the live signature this process last published for it (a heartbeat that
# reaches another worker may publish the same again: harmless)
_node_live: dict[str, tuple] = {}


def _node_saved(sender, instance, **kwargs) -> None:
    from .events import live_signature, publish_live

    signature = live_signature(instance.live or ())
    if _node_live.get(instance.node_id) == signature:
        return
    first = instance.node_id not in _node_live
    _node_live[instance.node_id] = signature
    if signature or not first:
        transaction.on_commit(publish_live)


def _ratings_applied(sender, match_id: str, **kwargs) -> None:
    from .events import publish_result

    publish_result(match_id)


def connect() -> None:
    from lobby.matchmaking.models import Node, Ticket
    from lobby.ratings.models import ResultReport
    from lobby.replays.services import ratings_applied

    post_save.connect(_ticket_saved, sender=Ticket, dispatch_uid="realtime-ticket")
    post_save.connect(_result_saved, sender=ResultReport, dispatch_uid="realtime-result")
    post_save.connect(_node_saved, sender=Node, dispatch_uid="realtime-node")
    ratings_applied.connect(_ratings_applied, dispatch_uid="realtime-ratings")
