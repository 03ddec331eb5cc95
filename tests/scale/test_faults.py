"""Faults on a real cluster (tests/scale/conftest.py): a node killed or stopped, the lobby
stopped, a node restarted. Matches are sprint (20 s of game time) with 2 seats, both
human; `ARENA_TIME_SCALE` sets how fast their clock runs; NODE_TIMEOUT is 3 s and the
nodes beat every 0.5 s."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
import redis

from cluster import http_get

from .players import (
    Player,
    Seat,
    by_match,
    join_all,
    match_row,
    queue_and_match,
    reports,
    wait_for,
)

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.timeout(150)]
START = 1200.0
blocking = asyncio.to_thread


def node_of(cluster, url: str) -> str:
    return next(k for k, v in cluster.node_urls.items() if v == url)


def seated_in_registry(cluster, node: str) -> int:
    """The players the lobby's node registry last heard `node` report (its Redis hash)."""
    with redis.Redis.from_url(cluster.redis_url, socket_timeout=5, decode_responses=True) as r:
        return int(r.hget(f"{cluster.env['REDIS_PREFIX']}node:{node}", "players") or 0)


async def two_matches_on_two_nodes(cluster) -> tuple[list[Player], list[dict], list[Seat]]:
    """Four guests, two matches, one per node, every seat joined (the rooms are running).

    The second pair queues once the first match's node has reported its two players to
    the lobby: the rule under test is "least loaded by the nodes' own heartbeats" (seats
    placed in the same matcher pass also count; a heartbeat sent before the placed
    players join resets that count: docs/scale-out.md, "Left to do")."""
    players = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(4)])
    first = await blocking(queue_and_match, players[:2])
    seats = await join_all(first)
    busy = node_of(cluster, first[0]["node_url"])
    await blocking(wait_for, lambda: seated_in_registry(cluster, busy) == 2, 10,
                   "the first match's node reported its players")
    second = await blocking(queue_and_match, players[2:])
    states = first + second
    assert len(by_match(states)) == 2
    assert {s["node_url"] for s in states} == set(cluster.node_urls.values()), \
        "the least-loaded rule puts the second match on the other node"
    seats += await join_all(second)
    return players, states, seats


async def test_node_killed_mid_match(make_cluster):
    """SIGKILL: the lobby drops the node within NODE_TIMEOUT, aborts its match without a
    rating change, frees its players, and sends new matches to the live node."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="1")
    timeout = 3.0
    players, states, seats = await two_matches_on_two_nodes(cluster)
    victim = node_of(cluster, states[0]["node_url"])
    lost = [i for i, s in enumerate(states) if s["node_url"] == states[0]["node_url"]]
    kept = [i for i in range(4) if i not in lost]
    live_url = states[kept[0]]["node_url"]
    await blocking(wait_for, lambda: all(seat.frames > 0 for seat in seats), 10,
                   "frames flowing to every seat")  # mid-match
    assert all(seat.end is None for seat in seats)

    killed_at = time.monotonic()
    cluster.nodes[victim].kill()
    await asyncio.gather(*(seats[i].closed(10) for i in lost))

    def freed() -> bool:
        return all(players[i].state()["status"] == "none" for i in lost)

    await blocking(wait_for, freed, timeout + 5, "the lost match's players freed")
    took = time.monotonic() - killed_at
    print(f"players of the killed node free {took:.2f} s after SIGKILL")
    # NODE_TIMEOUT after the last heartbeat, then a matcher pass (0.2 s) and our poll
    assert took <= timeout + 2.5, f"node dropped {took:.1f} s after the kill"
    assert match_row(cluster, states[lost[0]]["match_id"]) == ("aborted", "node lost")
    for i in lost:
        me = await blocking(players[i].me)
        assert (me["rating"], me["games"]) == (START, 0)
    # the other match is untouched and still running
    assert match_row(cluster, states[kept[0]]["match_id"])[0] == "active"
    assert all(seats[i].close_code is None and seats[i].end is None for i in kept)

    # the freed players queue again; with a newcomer pair too, every match goes to the live node
    newcomers = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(2)])
    again = await blocking(queue_and_match, [players[i] for i in lost] + newcomers)
    assert {s["node_url"] for s in again} == {live_url}
    assert len(by_match(again)) == 2
    await asyncio.gather(*(seat.close() for seat in seats))


async def test_lobby_down_while_matches_end(make_cluster):
    """The lobby (gunicorn and matcher) stops; both matches end meanwhile; their results
    wait in the nodes' outboxes and are recorded once each when the lobby is back."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="4")  # 5 s matches
    players, states, seats = await two_matches_on_two_nodes(cluster)
    match_ids = list(by_match(states))
    await blocking(cluster.stop_lobby)
    with pytest.raises(OSError):  # (not through a player: its keep-alive must stay usable)
        await blocking(http_get, cluster.lobby_url, "/api/csrf")

    await asyncio.gather(*(seat.closed(20) for seat in seats))
    assert all(seat.end is not None and seat.end[1] in ("score", "time") for seat in seats)

    def pending() -> dict[str, int]:
        return {n: cluster.health(n)["outbox_pending"] for n in cluster.nodes}

    assert await blocking(pending) == {"node-1": 1, "node-2": 1}

    await blocking(cluster.start_lobby)

    def recorded() -> bool:
        return all(p.me()["games"] == 1 for p in players)

    await blocking(wait_for, recorded, 40, "both results recorded after the lobby returned")
    await blocking(wait_for, lambda: not any(pending().values()), 10, "outboxes emptied")
    await asyncio.sleep(1.0)  # any late repeat would land now
    got = await blocking(reports, cluster, match_ids)
    assert sorted(got) == sorted(match_ids)
    for match_id in match_ids:
        assert match_row(cluster, match_id)[0] == "finished"
    me = [await blocking(p.me) for p in players]
    assert [m["games"] for m in me] == [1, 1, 1, 1]
    assert sum(m["rating"] for m in me) == pytest.approx(4 * START, abs=0.5)


async def test_node_restarted_delivers_its_outbox(make_cluster):
    """A node crashes with an undelivered result (the lobby was down when its match
    ended); started again, it delivers the result from its outbox file."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="4")
    players = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(2)])
    states = await blocking(queue_and_match, players)
    node = node_of(cluster, states[0]["node_url"])
    match_id = states[0]["match_id"]
    seats = await join_all(states)
    await blocking(cluster.stop_lobby)
    await asyncio.gather(*(seat.closed(20) for seat in seats))
    assert all(seat.end is not None and seat.end[1] != "aborted" for seat in seats)
    assert (await blocking(cluster.health, node))["outbox_pending"] == 1

    await blocking(cluster.nodes[node].kill)     # no shutdown flush: it is only in the file
    await blocking(cluster.start_node, node)
    assert (await blocking(cluster.health, node))["outbox_pending"] == 1
    await blocking(cluster.start_lobby)

    await blocking(wait_for, lambda: all(p.me()["games"] == 1 for p in players), 40,
                   "the restarted node's result recorded")
    assert match_row(cluster, match_id)[0] == "finished"
    assert (await blocking(reports, cluster, [match_id]))[match_id][0] == "finished"
    await blocking(wait_for, lambda: cluster.health(node)["outbox_pending"] == 0, 10,
                   "the outbox emptied")


async def test_sigterm_on_a_node(make_cluster):
    """SIGTERM (twice, 30 ms apart): the node tells its players to reconnect through the
    lobby (close 4030), flushes the aborted result before exiting (so the lobby frees them
    at once, not after NODE_TIMEOUT), and the players' next match is on the other node.
    Handoff off (ARENA_HANDOFF=0): with it the match moves instead (test_handoff.py)."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="1", NODE_TIMEOUT="20",
                             ARENA_HANDOFF="0")
    players = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(2)])
    states = await blocking(queue_and_match, players)
    node = node_of(cluster, states[0]["node_url"])
    seats = await join_all(states)
    await asyncio.sleep(0.3)

    stopped_at = time.monotonic()
    cluster.nodes[node].signal(signal.SIGTERM)
    await asyncio.sleep(0.03)  # a second one mid-shutdown (an impatient operator, or
    cluster.nodes[node].popen.send_signal(signal.SIGTERM)  # Ctrl-C + a launcher) is ignored
    await asyncio.gather(*(seat.closed(15) for seat in seats))
    for seat in seats:
        assert seat.close_code == 4030
        assert [e.code for e in seat.errors] == [4030]
        assert seat.end is not None and seat.end[1] == "aborted"
    assert await blocking(cluster.nodes[node].wait, 15) == 0

    await blocking(wait_for, lambda: all(p.state()["status"] == "none" for p in players), 10,
                   "players freed by the flushed result")
    assert time.monotonic() - stopped_at < 10, "freed by the result, not by NODE_TIMEOUT"
    assert match_row(cluster, states[0]["match_id"])[0] == "aborted"
    assert (await blocking(reports, cluster, [states[0]["match_id"]]))[states[0]["match_id"]][0] \
        == "aborted"
    for p in players:
        me = await blocking(p.me)
        assert (me["rating"], me["games"]) == (START, 0)

    again = await blocking(queue_and_match, players)
    other = next(url for name, url in cluster.node_urls.items() if name != node)
    assert {s["node_url"] for s in again} == {other}
