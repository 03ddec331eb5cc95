"""The lobby's part in a handoff (game_server/handoff.py, docs/scale-out.md "Handoff"):
where a draining node's match goes, the grant for exactly that transfer, and the move of
the match to its new node once the target has it.

- `POST /api/internal/handoff` (the source): `{match_id, sha256}` -> `{node_id, url,
  grant}`: the least-loaded live node that is not draining, runs the match's mode and
  fits its seats, other than the source; 409 if the match is not active on the source,
  503 if no node can take it. The grant (engine.grants) is signed with the *target's*
  key: it checks it with its own.
- `POST /api/internal/handoff/commit` (the target, before it ticks): `{grant}` -> 200
  once the match is the target's (its result is then accepted from it only); 409 if the
  match is no longer active on the grant's source (ended, moved elsewhere). Idempotent.
- `POST /api/internal/handoff/owner` (any node): `{match_id}` -> `{node_id, status}`: how
  a source whose transfer failed learns whether the target committed anyway.

`request_drain(node)` is the admin's "drain node" action: the node's signed
`POST /internal/drain`.
"""

from __future__ import annotations

import re
import time
import urllib.error
import urllib.request

from django.conf import settings
from django.http import HttpRequest, JsonResponse

from engine.auth import derive_node_key, sign_request
from engine.grants import GrantError, issue_grant, verify_grant
from lobby.api import error
from lobby.shared import state
from lobby.shared.nodes import pick

from .internal import signed_node_view
from .models import Match, Node
from .validate import string

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")


def _match_id(data: dict) -> str:
    return string(data, "match_id", 32)


@signed_node_view
def target(request: HttpRequest, data: dict, node_id: str) -> JsonResponse:
    match_id = _match_id(data)
    sha = string(data, "sha256", 64, SHA256_RE)
    match = Match.objects.filter(pk=match_id).select_related("node").first()
    if match is None or match.status != Match.ACTIVE or match.node is None \
            or match.node.node_id != node_id:
        return error(409, "this match is not active on this node")
    now = time.time()
    nodes = [n for n in state().nodes.alive(now) if not n.draining and n.node_id != node_id]
    chosen = pick(nodes, match.seats, match.mode)
    if chosen is None:
        return error(503, "no node can take this match", code="no_target")
    grant = issue_grant(derive_node_key(settings.NODE_SECRET, chosen.node_id),
                        match_id=match_id, src=node_id, dst=chosen.node_id, sha256=sha, now=now)
    return JsonResponse({"node_id": chosen.node_id, "url": chosen.url, "grant": grant})


@signed_node_view
def commit(request: HttpRequest, data: dict, node_id: str) -> JsonResponse:
    try:
        grant = verify_grant(derive_node_key(settings.NODE_SECRET, node_id),
                             data.get("grant"), node_id=node_id, now=time.time())
    except GrantError as exc:
        return error(403, f"forbidden: {exc}")
    dst = Node.objects.filter(node_id=node_id).first()
    if dst is None:
        return error(409, "unknown node")
    moved = Match.objects.filter(pk=grant.m, status=Match.ACTIVE,
                                 node__node_id=grant.src).update(node=dst)
    if not moved and not Match.objects.filter(pk=grant.m, status=Match.ACTIVE,
                                              node=dst).exists():
        return error(409, "this match is no longer active on the grant's source")
    return JsonResponse({"ok": True, "match_id": grant.m, "node_id": node_id})


@signed_node_view
def owner(request: HttpRequest, data: dict, node_id: str) -> JsonResponse:
    match = Match.objects.filter(pk=_match_id(data)).select_related("node").first()
    if match is None:
        return error(404, "no such match")
    return JsonResponse({"node_id": match.node.node_id if match.node else None,
                         "status": match.status})


DRAIN_PATH = "/internal/drain"


def request_drain(node: Node, timeout: float = 5.0) -> tuple[int, str]:
    """Ask `node` to drain (signed with its key): (HTTP status or 0, answer or error)."""
    body = b"{}"
    headers = sign_request(derive_node_key(settings.NODE_SECRET, node.node_id),
                           node_id=node.node_id, method="POST", path=DRAIN_PATH, body=body,
                           now=time.time())
    req = urllib.request.Request(node.url.rstrip("/") + DRAIN_PATH, data=body, method="POST",
                                 headers={**headers, "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read(500).decode(errors="replace")
    except urllib.error.HTTPError as e:
        return e.code, e.read(500).decode(errors="replace")
    except (OSError, ValueError) as e:
        return 0, str(e)
