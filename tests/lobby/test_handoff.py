"""The lobby's handoff endpoints (lobby/matchmaking/handoff.py): the target of a draining
node's match, the grant, the commit that moves the match, and who owns it; then a result
is accepted only from the node that has the match."""

from __future__ import annotations

import hashlib
import time

from django.conf import settings

from engine.auth import derive_node_key
from engine.grants import issue_grant, verify_grant
from lobby.matchmaking.models import Match, Node
from lobby.ratings.models import ResultReport

from .conftest import heartbeat, player_row, result_body, signed_post

SHA = hashlib.sha256(b"body").hexdigest()


def setup_match(client, *, draining_other: bool = False) -> Match:
    for node_id in ("node-1", "node-2", "node-3"):
        assert heartbeat(client, node_id=node_id, players={"node-2": 5, "node-3": 1}.get(
            node_id, 0), draining=draining_other and node_id != "node-1").status_code == 200
    return Match.objects.create(match_id="m1", game="arena", mode="arena", seats=2,
                                node=Node.objects.get(node_id="node-1"))


def test_target_is_the_least_loaded_other_live_node(client, db):
    setup_match(client)
    r = signed_post(client, "/api/internal/handoff", {"match_id": "m1", "sha256": SHA})
    assert r.status_code == 200, r.content
    body = r.json()
    assert (body["node_id"], body["url"]) == ("node-3", "http://127.0.0.1:9/node-3")
    grant = verify_grant(derive_node_key(settings.NODE_SECRET, "node-3"), body["grant"],
                         node_id="node-3", now=time.time())
    assert (grant.m, grant.src, grant.dst, grant.sha) == ("m1", "node-1", "node-3", SHA)


def test_no_target_when_the_others_drain(client, db):
    setup_match(client, draining_other=True)
    r = signed_post(client, "/api/internal/handoff", {"match_id": "m1", "sha256": SHA})
    assert r.status_code == 503 and r.json()["code"] == "no_target"


def test_only_the_node_that_has_the_match_may_move_it(client, db):
    setup_match(client)
    r = signed_post(client, "/api/internal/handoff", {"match_id": "m1", "sha256": SHA},
                    node_id="node-2")
    assert r.status_code == 409
    assert signed_post(client, "/api/internal/handoff",
                       {"match_id": "m1", "sha256": "nothex"}).status_code == 400


def grant(dst: str = "node-3", src: str = "node-1", key_of: str | None = None) -> str:
    return issue_grant(derive_node_key(settings.NODE_SECRET, key_of or dst), match_id="m1",
                       src=src, dst=dst, sha256=SHA, now=time.time())


def test_commit_moves_the_match_once_and_results_follow(client, db):
    match = setup_match(client)
    assert signed_post(client, "/api/internal/handoff/commit", {"grant": grant()},
                       node_id="node-2").status_code == 403    # not the grant's target
    assert signed_post(client, "/api/internal/handoff/commit",
                       {"grant": grant(key_of="node-1")}, node_id="node-3").status_code == 403
    r = signed_post(client, "/api/internal/handoff/commit", {"grant": grant()}, node_id="node-3")
    assert r.status_code == 200, r.content
    match.refresh_from_db()
    assert match.node.node_id == "node-3"
    # idempotent for the target; a second grant from the old source cannot move it again
    assert signed_post(client, "/api/internal/handoff/commit", {"grant": grant()},
                       node_id="node-3").status_code == 200
    assert signed_post(client, "/api/internal/handoff/commit", {"grant": grant(dst="node-2")},
                       node_id="node-2").status_code == 409
    owner = signed_post(client, "/api/internal/handoff/owner", {"match_id": "m1"})
    assert owner.json() == {"node_id": "node-3", "status": "active"}
    # the source's result is refused now; the target's is the one
    players = [player_row(0, 1, bot=True), player_row(0, 2, bot=True)]
    late = signed_post(client, "/api/internal/results", result_body("m1", players))
    assert late.status_code == 403
    ok = signed_post(client, "/api/internal/results",
                     result_body("m1", players, node_id="node-3"), node_id="node-3")
    assert ok.status_code == 200, ok.content
    assert ResultReport.objects.filter(match_id="m1").count() == 1


def test_commit_of_an_ended_match_is_refused(client, db):
    match = setup_match(client)
    Match.objects.filter(pk=match.pk).update(status=Match.ABORTED)
    r = signed_post(client, "/api/internal/handoff/commit", {"grant": grant()}, node_id="node-3")
    assert r.status_code == 409
    match.refresh_from_db()
    assert match.node.node_id == "node-1"


def test_admin_drain_action_signs_for_the_node(client, db, admin_client):
    """The Node admin's "drain" action POSTs /internal/drain signed with that node's key
    (a stand-in node on a real socket checks the signature)."""
    import http.server
    import threading

    from engine.auth import verify_request

    seen: list[tuple[str, str]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802 (http.server's name)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            node_id, _ = verify_request(derive_node_key(settings.NODE_SECRET, "node-1"),
                                        headers=self.headers, method="POST", path=self.path,
                                        body=body, now=time.time())
            seen.append((node_id, self.path))
            self.send_response(202)
            self.end_headers()
            self.wfile.write(b'{"draining": true}')

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        heartbeat(client, url=f"http://127.0.0.1:{server.server_port}")
        node = Node.objects.get(node_id="node-1")
        r = admin_client.post("/admin/matchmaking/node/", {"action": "drain_selected",
                                                          "_selected_action": [node.pk]})
        assert r.status_code == 302
    finally:
        server.shutdown()
    assert seen == [("node-1", "/internal/drain")]
