"""Handoff between two real nodes on 127.0.0.1 (game_server/handoff.py), with a small
stand-in for the lobby's three handoff endpoints (the real lobby: tests/scale/
test_handoff.py). What the target refuses: a forged or foreign grant, a body that is not
the granted one (checksum), a corrupt snapshot, a match it has, a commit the lobby
refuses; and a room moved with its state exact, its players resuming on the target."""

from __future__ import annotations

import hashlib
import json
import time

import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from engine import codec
from engine.auth import derive_node_key
from engine.grants import issue_grant
from game_server.app import HANDOFF_KEY
from game_server.handoff import GRANT_HEADER, ROOMS_PATH, export_room, freeze, thaw
from game_server.settings import DEV_NODE_SECRET

from .conftest import token


class FakeLobby:
    """The lobby's handoff endpoints: target = `self.target`, commits recorded (or
    refused with `self.commit_status`)."""

    def __init__(self) -> None:
        self.target: tuple[str, str] | None = None   # (node id, url)
        self.commits: list[str] = []
        self.commit_status = 200
        self.owner = "node-1"
        app = web.Application()
        app.router.add_post("/api/internal/handoff", self.handoff)
        app.router.add_post("/api/internal/handoff/commit", self.commit)
        app.router.add_post("/api/internal/handoff/owner", self.owner_view)
        app.router.add_post("/api/internal/nodes/heartbeat", self.heartbeat)
        self.server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return str(self.server.make_url("")).rstrip("/")

    async def handoff(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.target is None:
            return web.json_response({"error": "no node"}, status=503)
        node_id, url = self.target
        grant = issue_grant(derive_node_key(DEV_NODE_SECRET, node_id), match_id=body["match_id"],
                            src=request.headers["X-Arena-Node"], dst=node_id,
                            sha256=body["sha256"], now=time.time())
        return web.json_response({"node_id": node_id, "url": url, "grant": grant})

    async def commit(self, request: web.Request) -> web.Response:
        body = await request.json()
        if self.commit_status != 200:
            return web.json_response({"error": "refused"}, status=self.commit_status)
        self.commits.append(body["grant"])
        self.owner = request.headers["X-Arena-Node"]
        return web.json_response({"ok": True})

    async def heartbeat(self, request: web.Request) -> web.Response:
        return web.json_response({})

    async def owner_view(self, request: web.Request) -> web.Response:
        return web.json_response({"node_id": self.owner, "status": "active"})


@pytest.fixture
async def lobby():
    fake = FakeLobby()
    await fake.server.start_server()
    yield fake
    await fake.server.close()


async def two_nodes(make_node, lobby):
    a = await make_node(node_id="node-1", lobby_url=lobby.url, heartbeat_interval=60,
                        drain_grace=1.0)
    b = await make_node(node_id="node-2", lobby_url=lobby.url, heartbeat_interval=60,
                        drain_grace=1.0)
    lobby.target = ("node-2", b.url.rstrip("/"))
    return a, b


def grant_for(body: bytes, match: str = "m1", dst: str = "node-2", *, key_of: str = "node-2",
              ttl: int = 30) -> str:
    return issue_grant(derive_node_key(DEV_NODE_SECRET, key_of), match_id=match, src="node-1",
                       dst=dst, sha256=hashlib.sha256(body).hexdigest(), now=time.time(), ttl=ttl)


async def post_room(node, body: bytes, grant: str) -> tuple[int, dict]:
    async with node.session.post(node.server.make_url(ROOMS_PATH), data=body,
                                 headers={GRANT_HEADER: grant}) as r:
        return r.status, json.loads(await r.text())


async def exported(node, match: str = "m1") -> bytes:
    """The export body of a fresh room of `node` (frozen meanwhile, thawed after)."""
    c = await node.player(token(match, user=7))
    await c.expect(codec.Delta)
    room = node.node.rooms[match]
    freeze(room)
    body, _ = export_room(room)
    thaw(room)
    await c.close()
    return body


async def test_a_room_moves_and_its_player_resumes_on_the_target(lobby, make_node):
    a, b = await two_nodes(make_node, lobby)
    c = await a.player(token("m1", user=1, name="Ann"))
    spectator = await a.connect()
    await spectator.join(token("m1", user=9, name="Sam", role="spectator"))
    await c.expect(codec.Delta)
    room = a.node.rooms["m1"]
    before = room.game.tick

    assert await a.app[HANDOFF_KEY].hand_off(room) == "moved"
    assert "m1" not in a.node.rooms and room.closed
    moved_to = b.node.rooms["m1"]
    assert moved_to.game.tick >= before
    assert lobby.commits and lobby.owner == "node-2"
    for client in (c, spectator):
        moved = await client.expect(codec.Moved)
        assert moved.node_url == b.url.rstrip("/")
        assert await client.closed() == 4031
    c2 = await b.connect()
    await c2.send(codec.Resume(moved_to.players[c.welcome.player_id].resume_token))
    w = await c2.expect(codec.Welcome)
    assert (w.player_id, w.match_id) == (c.welcome.player_id, "m1")
    await c2.expect(codec.Keyframe)
    await c2.expect(codec.Delta)
    assert c2.tick > before
    assert a.node.metrics.rooms_moved == 1 and b.node.metrics.handoffs_received == 1
    # the source posts nothing for a moved match: the target will
    assert a.outbox.rows() == []
    # a late join at the source (a lobby token from before the move) is sent there too
    late = await a.connect()
    await late.send(codec.Join(token("m1", user=1, name="Ann")))
    assert (await late.expect(codec.Moved)).node_url == b.url.rstrip("/")
    assert await late.closed() == 4031
    late_spectator = await a.connect()
    await late_spectator.send(codec.Join(token("m1", user=9, role="spectator")))
    assert await late_spectator.closed() == 4030   # the lobby names the new node


async def test_the_moved_state_is_exact(lobby, make_node):
    a, b = await two_nodes(make_node, lobby)
    c = await a.player(token("m1", user=1))
    for _ in range(5):
        await c.input(mx=1)
        await c.expect(codec.Delta)
    room = a.node.rooms["m1"]
    freeze(room)
    mode = room._config_map["mode"]
    want = room.game_def.snapshot(room.game.game, mode)
    body, _ = export_room(room)
    status, answer = await post_room(b, body, grant_for(body))
    assert status == 200, answer
    got = b.node.rooms["m1"]
    assert answer["tick"] == room.game.tick
    assert got.game_def.snapshot(got.game.game, mode) == want


async def test_forged_foreign_or_expired_grants_are_refused(lobby, make_node):
    a, b = await two_nodes(make_node, lobby)
    body = await exported(a)
    for grant in ("", "g1.e30.AAAA", grant_for(body, key_of="node-1"),   # signed with another key
                  grant_for(body, dst="node-3", key_of="node-2"),        # for another node
                  grant_for(body, ttl=-5)):
        status, answer = await post_room(b, body, grant)
        assert status == 403, answer
    assert "m1" not in b.node.rooms and not lobby.commits
    assert b.node.metrics.handoffs_refused["403"] == 5


async def test_a_body_other_than_the_granted_one_is_refused(lobby, make_node):
    """The checksum end to end: the grant names the SHA-256 of the source's bytes; a
    changed byte in transit is 400, and so is a corrupt snapshot inside a body whose
    SHA-256 matches (its BLAKE2b)."""
    a, b = await two_nodes(make_node, lobby)
    body = await exported(a)
    tampered = bytearray(body)
    tampered[len(tampered) // 2] ^= 0x01
    status, answer = await post_room(b, bytes(tampered), grant_for(body))
    assert (status, answer["error"]) == (400, "checksum mismatch")

    d = msgpack.unpackb(body, raw=False)
    snap = bytearray(d["snapshot"])
    snap[-3] ^= 0x40
    d["snapshot"] = bytes(snap)
    corrupt = msgpack.packb(d, use_bin_type=True)
    status, answer = await post_room(b, corrupt, grant_for(corrupt))
    assert status == 400 and answer["error"].startswith("bad snapshot"), answer
    for garbage in (b"\xc1", msgpack.packb({"format": "room", "v": 1})):
        status, answer = await post_room(b, garbage, grant_for(garbage))
        assert status == 400, answer
    assert "m1" not in b.node.rooms and not lobby.commits


async def test_a_match_the_target_has_is_refused(lobby, make_node):
    """Never on two nodes: a second transfer of one match is 409 and leaves the first."""
    a, b = await two_nodes(make_node, lobby)
    body = await exported(a)
    assert (await post_room(b, body, grant_for(body)))[0] == 200
    room = b.node.rooms["m1"]
    status, answer = await post_room(b, body, grant_for(body))
    assert status == 409, answer
    assert b.node.rooms["m1"] is room and len(lobby.commits) == 1


async def test_no_commit_no_room(lobby, make_node):
    """The lobby refuses the commit (the match ended or moved meanwhile): 503 and the
    target runs nothing; the source, still the owner, thaws and goes on."""
    a, b = await two_nodes(make_node, lobby)
    lobby.commit_status = 409
    c = await a.player(token("m1", user=1))
    await c.expect(codec.Delta)
    room = a.node.rooms["m1"]
    assert await a.app[HANDOFF_KEY].hand_off(room) == "failed"
    assert "m1" not in b.node.rooms and b.node.metrics.handoffs_refused["503"] == 1
    assert a.node.rooms["m1"] is room and not room.frozen
    tick = room.game.tick
    await c.expect(codec.Delta)
    await c.expect(codec.Delta)
    assert room.game.tick > tick and not c.ws.closed
    assert a.node.metrics.handoffs_failed["transfer"] == 1


async def test_no_target_the_room_stays(lobby, make_node):
    a, _ = await two_nodes(make_node, lobby)
    lobby.target = None
    c = await a.player(token("m1", user=1))
    await c.expect(codec.Delta)
    room = a.node.rooms["m1"]
    assert await a.app[HANDOFF_KEY].hand_off(room) == "no_target"
    tick = room.game.tick
    await c.expect(codec.Delta)
    await c.expect(codec.Delta)
    assert room.game.tick > tick and not room.frozen


async def test_drain_request_is_signed(lobby, make_node):
    """POST /internal/drain: 403 unsigned or signed for another node; 202 signed with the
    node's own key, then the node says draining and refuses a new room with 4030."""
    from engine.auth import sign_request

    a, _ = await two_nodes(make_node, lobby)
    url = a.server.make_url("/internal/drain")
    async with a.session.post(url, data=b"{}") as r:
        assert r.status == 403
    for signer in ("node-2", "node-1"):
        headers = sign_request(derive_node_key(DEV_NODE_SECRET, signer), node_id=signer,
                               method="POST", path="/internal/drain", body=b"{}", now=time.time())
        async with a.session.post(url, data=b"{}", headers=headers) as r:
            assert r.status == (403 if signer == "node-2" else 202)
    assert a.node.draining
    c = await a.connect()
    await c.send(codec.Join(token("m2", user=3)))
    assert await c.closed() == 4030
    status, _ = await a.get("/health")
    assert status == 503


async def test_moved_message_round_trips():
    msg = codec.Moved("http://127.0.0.1:8002", "t" * 24)
    assert codec.decode(codec.encode(msg)) == msg
    with pytest.raises(codec.DecodeError):
        codec.decode(msgpack.packb([16, 5, "x"]))


async def test_transfer_body_limit(lobby, make_node):
    _, b = await two_nodes(make_node, lobby)
    from game_server.handoff import MAX_TRANSFER_BYTES

    big = b"\0" * (MAX_TRANSFER_BYTES + 1)
    status, _ = await post_room(b, big, grant_for(big))
    assert status == 413


async def test_drain_lets_a_room_about_to_end_finish_here(lobby, make_node):
    """A room whose time limit falls within drain_grace is not moved: it finishes on the
    draining node, with its result; nothing is handed off."""
    from game_server.app import DRAINER_KEY

    a = await make_node(node_id="node-1", lobby_url=lobby.url, heartbeat_interval=60,
                        drain_grace=30.0, game_overrides={"patch_hz": 30, "time_limit": 2})
    lobby.target = ("node-2", "http://127.0.0.1:9")
    c = await a.player(token("m1", user=1))
    await c.expect(codec.Delta)
    await a.app[DRAINER_KEY].drain("test")
    assert await c.closed(5) == 1000
    assert [r["result"]["status"] for r in a.outbox.rows()] == ["finished"]
    assert a.node.metrics.rooms_moved == 0 and not lobby.commits


async def test_drain_without_a_target_aborts_at_once(lobby, make_node):
    """No other node: the room is aborted as before handoffs (4030, an aborted result),
    without waiting for the grace."""
    from game_server.app import DRAINER_KEY

    a = await make_node(node_id="node-1", lobby_url=lobby.url, heartbeat_interval=60,
                        drain_grace=15.0)  # below the match's 20 s
    lobby.target = None
    c = await a.player(token("m1", user=1))
    await c.expect(codec.Delta)
    await a.app[DRAINER_KEY].drain("test")   # returns once no room is left
    assert await c.closed() == 4030
    assert [r["result"]["status"] for r in a.outbox.rows()] == ["aborted"]
    assert a.node.metrics.handoffs_failed["no_target"] == 1
