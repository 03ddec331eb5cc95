"""Results: a whole match to the lobby, through lobby outages, node restarts and refusals."""

from __future__ import annotations

import asyncio
import time

from engine import codec
from engine.auth import derive_node_key
from game_server.outbox import Outbox
from lobby.live import free_port
from tests.game_server.conftest import FakeLobby, token

NODE_KEY = derive_node_key("dev-node-secret", "node-1")  # what FakeLobby expects
QUICK = {"time_scale": 20.0, "outbox_retry_min": 0.05, "outbox_retry_max": 0.2}


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def delivered_after(box: Outbox, lobby: FakeLobby) -> None:
    """Add a result and wait until the lobby has it: a positive sign that the sender ran a
    pass after everything before it (a pass sends every due result, oldest first), so a
    repeat of an earlier one would have been posted by then."""
    box.add({"match_id": "probe", "status": "finished", "players": []})
    await wait_for(lambda: "probe" in lobby.results)


async def play_to_the_end(n, match: str) -> codec.Event:
    """One human and three bots play a sprint match to its end."""
    c = await n.player(token(match, 7, "Ann", bots=3))
    end = await c.expect(codec.Event, timeout=10)
    assert await c.closed() == 1000
    return end


async def test_match_result_reaches_the_lobby_signed(make_node, lobby):
    n = await make_node(lobby_url=lobby.url, **QUICK)
    end = await play_to_the_end(n, "final")
    [[kind, reason, rows]] = end.events
    assert kind == codec.EV_MATCH_END and reason in ("score", "time")
    # rows: [player_id, user_id, name, score, placement, bot, *stats (kills, deaths)]
    assert len(rows) == 4 and [r[1] for r in rows].count(7) == 1
    assert all(len(r) == 8 for r in rows)
    assert [r[4] for r in rows] == sorted(r[4] for r in rows)  # by placement
    await wait_for(lambda: "final" in lobby.results)
    sent = lobby.results["final"]
    assert sent["status"] == "finished" and sent["reason"] == reason
    assert sent["game"] == "arena" and sent["mode"] == "sprint"
    assert sent["node_id"] == "node-1" and sent["ticks"] > 0
    assert [(p["user_id"], p["name"], p["score"], p["placement"], p["bot"], p["stats"])
            for p in sent["players"]] \
        == [(r[1], r[2], r[3], r[4], r[5], {"kills": r[6], "deaths": r[7]}) for r in rows]
    assert lobby.bad_signatures == 0
    [row] = n.outbox.rows()
    assert row["delivered"] and row["attempts"] == 1


async def test_lobby_outage_retried_then_delivered_once(make_node):
    lobby = FakeLobby(port=free_port())  # not listening yet: connection refused
    n = await make_node(lobby_url=lobby.url, **QUICK)
    await play_to_the_end(n, "outage")
    await wait_for(lambda: n.outbox.rows()[0]["attempts"] >= 2)
    assert n.outbox.pending_count() == 1
    await lobby.up()
    try:
        await wait_for(lambda: n.outbox.pending_count() == 0)
        await delivered_after(n.outbox, lobby)  # the sender has run again since
        assert lobby.posts == 2 and list(lobby.results) == ["outage", "probe"]  # no repeat
    finally:
        await lobby.down()


async def test_pending_results_delivered_after_node_restart(make_node, tmp_path):
    path = str(tmp_path / "outbox-restart.sqlite3")
    lobby = FakeLobby(port=free_port())
    first = await make_node(lobby_url=lobby.url, outbox_path=path, shutdown_flush_timeout=0.2,
                            **QUICK)
    await play_to_the_end(first, "restart")
    await first.session.close()
    await first.server.close()   # node stops with the result still pending
    await lobby.up()
    try:
        assert lobby.posts == 0
        await make_node(lobby_url=lobby.url, outbox_path=path, **QUICK)  # same file
        await wait_for(lambda: "restart" in lobby.results)
        assert lobby.posts == 1
    finally:
        await lobby.down()


async def test_permanent_rejection_is_kept_and_not_retried(tmp_path, lobby):
    lobby.status_override = 400
    box = Outbox(str(tmp_path / "o.sqlite3"), node_id="node-1", node_secret=NODE_KEY,
                 lobby_url=lobby.url, retry_min=0.05, retry_max=0.1)
    box.start()
    try:
        box.add({"match_id": "bad", "status": "finished"})
        await wait_for(lambda: box.rows()[0]["rejected"] is not None)
        box.add({"match_id": "probe", "status": "finished"})  # the sender runs again...
        await wait_for(lambda: box.rows()[1]["rejected"] is not None)
        assert lobby.posts == 2 and box.pending_count() == 0  # ...and did not retry "bad"
        assert [(r["match_id"], r["attempts"]) for r in box.rows()] == [("bad", 1), ("probe", 1)]
        assert box.rows()[0]["rejected"].startswith("400")
    finally:
        await box.close()


async def test_server_errors_and_429_are_retried(tmp_path, lobby):
    lobby.status_override = 503
    box = Outbox(str(tmp_path / "o.sqlite3"), node_id="node-1", node_secret=NODE_KEY,
                 lobby_url=lobby.url, retry_min=0.05, retry_max=0.1)
    box.start()
    try:
        box.add({"match_id": "m", "status": "finished"})
        await wait_for(lambda: lobby.posts >= 2)
        lobby.status_override = 429
        await wait_for(lambda: lobby.posts >= 4)
        lobby.status_override = None
        await wait_for(lambda: box.pending_count() == 0)
        assert "m" in lobby.results
    finally:
        await box.close()


async def test_wrong_secret_is_refused_by_the_lobby(tmp_path, lobby):
    box = Outbox(str(tmp_path / "o.sqlite3"), node_id="node-1", node_secret="wrong",
                 lobby_url=lobby.url)
    box.start()
    try:
        box.add({"match_id": "forged", "status": "finished"})
        await wait_for(lambda: box.rows()[0]["rejected"] is not None)
        assert lobby.bad_signatures == 1 and not lobby.results
    finally:
        await box.close()


async def test_heartbeats_are_signed_and_describe_the_node(lobby, make_node):
    n = await make_node(lobby_url=lobby.url, heartbeat_interval=0.1, max_players=123)
    await n.player(token("hb", 1))
    await wait_for(lambda: any(h["players"] == 1 for h in lobby.heartbeats))
    beat = lobby.heartbeats[-1]
    assert beat["node_id"] == "node-1" and beat["url"] == n.node.settings.public_url
    assert beat["capacity"] == 123 and beat["rooms"] == 1 and beat["draining"] is False


async def test_heartbeats_count_the_seats_and_rooms_created_for_tokens(lobby, make_node):
    n = await make_node(lobby_url=lobby.url, heartbeat_interval=0.1)
    await wait_for(lambda: lobby.heartbeats)
    first = lobby.heartbeats[-1]
    assert (first["seated_total"], first["rooms_total"]) == (0, 0)
    boot = first["boot"]
    assert isinstance(boot, str) and 0 < len(boot) <= 32
    ann = await n.player(token("m1", 1, bots=2))     # a new room, one seat (bots not counted)
    await n.player(token("m1", 2, "Bob"))            # a second seat in it
    await n.player(token("m1", 9, "Eve", role="spectator"))  # a spectator: not a seat
    await n.player(token("m1", 1))                   # a fresh token for Ann's seat: the same seat
    again = await n.connect()
    await again.send(codec.Resume(ann.welcome.resume_token))
    await again.expect(codec.Welcome)                # a resume: the same seat
    await n.player(token("m2", 3, "Cy"))             # another room
    assert (n.node.seated_total, n.node.rooms_total) == (3, 2)
    await wait_for(lambda: lobby.heartbeats[-1]["seated_total"] == 3)
    beat = lobby.heartbeats[-1]
    assert (beat["boot"], beat["seated_total"], beat["rooms_total"]) == (boot, 3, 2)
    _, text = await n.get("/metrics")
    assert "arena_seated_total 3" in text and "arena_token_rooms_total 2" in text
    assert f'arena_boot_info{{boot="{boot}"}} 1' in text
