"""Handoff on real processes (tests/scale/conftest.py: uvicorn lobby on PostgreSQL,
Redis, two nodes): a draining node moves its match to the other node and the players
carry on there; a transfer whose target dies leaves the match on the source, never on
two nodes, with one result (docs/scale-out.md, "Handoff")."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from dataclasses import dataclass, field

import aiohttp
import pytest

from cluster import http_get
from engine import codec
from engine.auth import derive_node_key, sign_request

from .players import Player, match_row, queue_and_match, reports, wait_for

pytestmark = [pytest.mark.scale, pytest.mark.slow, pytest.mark.timeout(150)]
START = 1200.0
blocking = asyncio.to_thread


@dataclass
class MovingSeat:
    """A client on the raw websocket that follows `moved` (then 4031) to the new node
    and resumes there, as the browser and the bots do."""

    url: str
    first: str                           # the join message's token
    welcomes: list[codec.Welcome] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)   # the node of each welcome
    moved: list[codec.Moved] = field(default_factory=list)
    closes: list[int | None] = field(default_factory=list)
    frames_by_url: dict[str, int] = field(default_factory=dict)
    last_tick_by_url: dict[str, int] = field(default_factory=dict)
    end: list | None = None
    task: asyncio.Task | None = None

    async def run(self) -> None:
        message: codec.Message = codec.Join(self.first)
        async with aiohttp.ClientSession() as http:
            while True:
                ws = await http.ws_connect(self.url.replace("http://", "ws://") + "/play/websocket")
                await ws.send_bytes(codec.encode(message))
                moved = None
                async for frame in ws:
                    if frame.type != aiohttp.WSMsgType.BINARY:
                        break
                    msg = codec.decode_any(frame.data, max_size=1 << 22)
                    if isinstance(msg, codec.Welcome):
                        self.welcomes.append(msg)
                        self.urls.append(self.url)
                    elif isinstance(msg, codec.Moved):
                        self.moved.append(msg)
                        moved = msg
                    self.frames_by_url[self.url] = self.frames_by_url.get(self.url, 0) + 1
                    tick = getattr(msg, "tick", None)
                    if isinstance(tick, int) and not isinstance(msg, codec.Welcome):
                        self.last_tick_by_url[self.url] = tick
                    for ev in getattr(msg, "events", None) or []:
                        if ev[0] == codec.EV_MATCH_END:
                            self.end = ev
                self.closes.append(ws.close_code)
                if moved is None or ws.close_code != 4031:
                    return
                self.url, message = moved.node_url, codec.Resume(moved.resume_token)

    def start(self) -> MovingSeat:
        self.task = asyncio.create_task(self.run())
        return self

    def frames(self, url: str) -> int:
        return self.frames_by_url.get(url, 0)


async def spectate(player: Player, match_id: str) -> dict:
    status, body = await blocking(player.http.request, "POST", "/api/spectate",
                                  {"match_id": match_id})
    assert status == 200, (status, body)
    return body


def node_of(cluster, url: str) -> str:
    return next(k for k, v in cluster.node_urls.items() if v == url)


def metric(cluster, node: str, name: str) -> float:
    """The sum of a counter's samples in the node's /metrics."""
    import urllib.request

    with urllib.request.urlopen(cluster.node_urls[node] + "/metrics", timeout=3) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith(name) and not line.startswith("#"))


async def three_seats(cluster) -> tuple[list[Player], list[dict], list[MovingSeat]]:
    """Two players in one match and a third guest spectating it, every seat joined."""
    players = await blocking(lambda: [Player(cluster.lobby_url) for _ in range(3)])
    states = await blocking(queue_and_match, players[:2])
    assert states[0]["match_id"] == states[1]["match_id"]
    seats = [MovingSeat(s["node_url"], s["token"]).start() for s in states]
    await blocking(wait_for, lambda: all(s.welcomes for s in seats), 15, "players seated")
    view = await spectate(players[2], states[0]["match_id"])
    seats.append(MovingSeat(view["node_url"], view["token"]).start())
    await blocking(wait_for, lambda: all(s.frames(s.url) > 5 for s in seats), 15,
                   "frames flowing to every seat")
    return players, states, seats


async def test_sigterm_moves_the_match_to_the_other_node(make_cluster):
    """SIGTERM mid-match: both players and the spectator get `moved` and 4031, resume on
    the other node (same seats, the game's tick goes on from where it was), the source
    exits, the match ends there with one result and one rating change each."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="2", ARENA_DRAIN_GRACE="2")
    players, states, seats = await three_seats(cluster)
    source_url = states[0]["node_url"]
    source = node_of(cluster, source_url)
    target_url = next(u for n, u in cluster.node_urls.items() if n != source)
    match_id = states[0]["match_id"]

    cluster.nodes[source].signal(signal.SIGTERM)
    await blocking(wait_for, lambda: all(len(s.welcomes) == 2 for s in seats), 20,
                   "every seat resumed on the target")
    assert await blocking(cluster.nodes[source].wait, 20) == 0
    for s in seats:
        assert [m.node_url for m in s.moved] == [target_url]
        assert s.closes[0] == 4031
        assert s.urls == [source_url, target_url]
        first, second = s.welcomes
        assert (second.player_id, second.match_id) == (first.player_id, first.match_id)
        assert second.tick >= s.last_tick_by_url[source_url], "the match went on, not anew"
    assert seats[2].welcomes[1].player_id == 0  # the spectator came back as a spectator

    await asyncio.wait_for(asyncio.gather(*(s.task for s in seats)), 40)
    for s in seats:
        assert s.end is not None and s.end[1] != "aborted", s.end
        assert s.frames(target_url) > 5
    await blocking(wait_for, lambda: match_row(cluster, match_id)[0] == "finished", 15,
                   "the lobby has the result")
    report = (await blocking(reports, cluster, [match_id]))[match_id]
    assert report == ("finished", 0), "posted once, by the target"

    def rated() -> list[dict] | None:
        mes = [p.me() for p in players[:2]]
        return mes if all(me["games"] == 1 for me in mes) else None

    # applied once (idle players draw: equal ratings stay equal; `games` counts it)
    await blocking(wait_for, rated, 30, "both ratings applied (replay verified)")
    await asyncio.sleep(1.5)  # a second application would show now (the verifier loops 1 s)
    assert [me["games"] for me in await blocking(lambda: [p.me() for p in players[:2]])] == [1, 1]


async def test_target_dead_mid_transfer_leaves_the_match_on_the_source(make_cluster):
    """The target stops answering (SIGSTOP, then SIGKILL) while a drain request moves the
    match: the transfer times out, the room thaws and goes on on the source (frames keep
    coming from it, no `moved`); with no live target left it is aborted there: one result,
    no rating change, and the dead target never ran it."""
    cluster = await blocking(make_cluster, ARENA_TIME_SCALE="1", ARENA_DRAIN_GRACE="8",
                             ARENA_HANDOFF_TIMEOUT="1", NODE_TIMEOUT="3")
    players, states, seats = await three_seats(cluster)
    source_url = states[0]["node_url"]
    source = node_of(cluster, source_url)
    target = next(n for n in cluster.nodes if n != source)
    match_id = states[0]["match_id"]

    cluster.nodes[target].signal(signal.SIGSTOP)
    try:
        body = b"{}"
        headers = sign_request(derive_node_key(cluster.env["NODE_SECRET"], source),
                               node_id=source, method="POST", path="/internal/drain",
                               body=body, now=time.time())
        async with aiohttp.ClientSession() as http, \
                http.post(source_url + "/internal/drain", data=body, headers=headers) as resp:
            assert resp.status == 202, await resp.text()
            assert json.loads(await resp.text())["draining"] is True
        await blocking(wait_for, lambda: metric(cluster, source, "arena_handoffs_failed_total"
                                                ) >= 1, 15, "a failed transfer")
        before = [s.frames(source_url) for s in seats]
        await blocking(wait_for, lambda: all(s.frames(source_url) > b + 10
                                             for s, b in zip(seats, before, strict=True)),
                       10, "the match going on on the source")
        assert all(not s.moved for s in seats)
    finally:
        cluster.nodes[target].kill()
    await asyncio.wait_for(asyncio.gather(*(s.task for s in seats)), 30)
    for s in seats:
        assert not s.moved and s.urls == [source_url]
        assert s.end is not None and s.end[1] == "aborted"
        assert s.closes == [4030]
    await blocking(wait_for, lambda: match_row(cluster, match_id)[0] == "aborted", 15,
                   "the aborted result")
    assert (await blocking(reports, cluster, [match_id]))[match_id] == ("aborted", 0)
    for p in players[:2]:
        me = await blocking(p.me)
        assert (me["rating"], me["games"]) == (START, 0)
    status, health = await blocking(http_get, source_url, "/health")
    assert status == 503 and health["draining"] is True and health["rooms"] == 0
