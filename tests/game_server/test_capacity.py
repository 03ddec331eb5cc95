"""Admission by measured headroom (game_server/capacity.py): past its CPU budget a node
refuses new rooms (4014, counted, reported in heartbeats) and the rooms already running
keep their rate."""

from __future__ import annotations

import asyncio

from engine import codec
from game_server.app import LOBBY_KEY
from game_server.capacity import Capacity
from game_server.metrics import Metrics

from .conftest import token

PATCH_HZ = 20
PLAYING = {"game_overrides": {"sim_hz": PATCH_HZ, "patch_hz": PATCH_HZ}}


class Fake:
    def __init__(self) -> None:
        self.t = 0.0
        self.cpu = 0.0
        self.players = 0


def test_load_per_player_and_room_for():
    f, m = Fake(), Metrics()
    cap = Capacity(budget=0.5, window=1.0, max_players=1000, metrics=m,
                   players=lambda: f.players, cpu=lambda: f.cpu, clock=lambda: f.t)
    assert cap.accepts_room(16) and cap.room_for() == 1000  # nothing measured yet
    f.players = 100
    for _ in range(5):  # 20% of a core for 100 players, for 5 s
        f.t += 1.0
        f.cpu += 0.2
        cap.sample()
    assert abs(cap.load - 0.2) < 1e-9 and abs(cap.per_player - 0.002) < 1e-9
    assert cap.room_for() == 150            # (0.5 - 0.2) / 0.002
    assert cap.accepts_room(16)
    f.players = 2  # few players: the load is not theirs alone (spread over 100)
    f.t += 1.0
    f.cpu += 0.2
    cap.sample()
    assert abs(cap.per_player - 0.002) < 1e-9 and cap.accepts_room(16)
    f.players = 100
    for _ in range(5):  # now 60%: past the budget
        f.t += 1.0
        f.cpu += 0.6
        cap.sample()
    assert cap.full and cap.room_for() == 0
    assert not cap.accepts_room(16) and not cap.accepts_room(1)
    assert m.refused["capacity"] == 2
    assert cap.report()["accepting_rooms"] is False


def test_overrunning_ticks_make_the_node_full():
    f, m = Fake(), Metrics()
    cap = Capacity(budget=0.9, window=1.0, max_players=1000, metrics=m,
                   players=lambda: f.players, cpu=lambda: f.cpu, clock=lambda: f.t)
    f.players = 10
    f.t += 1.0
    f.cpu += 0.1    # little CPU: the process does not get a core in time
    m.ticks += 90
    m.overruns += 10
    cap.sample()
    assert not cap.full  # 10 players: the machine is busy, not the node
    f.players = 100
    assert cap.full and not cap.accepts_room(4)


async def _count_patches(c, counts: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        m = await c.recv(5)
        if isinstance(m, codec.Delta | codec.Keyframe):
            counts.append(loop.time())


async def _play(c, stop: asyncio.Event) -> None:
    while not stop.is_set():
        await c.input()
        await asyncio.sleep(1 / PATCH_HZ)


async def test_past_its_budget_the_node_refuses_new_rooms_and_keeps_its_rate(make_node):
    # a budget of 1% of a core: four playing players in this process are past it
    n = await make_node(cpu_budget=0.01, capacity_interval=0.1, capacity_window=0.5, **PLAYING)
    first = [await n.player(token("first", u)) for u in (1, 2, 3, 4)]
    stop = asyncio.Event()
    counts: list[list[float]] = [[] for _ in first]
    tasks = [asyncio.create_task(_play(c, stop)) for c in first]
    tasks += [asyncio.create_task(_count_patches(c, k, stop)) for c, k in zip(first, counts, strict=True)]
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while not n.node.capacity.full:
        assert loop.time() < deadline, "the node never measured itself past 1% of a core"
        await asyncio.sleep(0.05)
    # newcomers, each a new match, while the first room plays on
    t0 = loop.time()
    refused = 0
    for i in range(20):
        c = await n.connect()
        await c.send(codec.Join(token(f"new-{i}", 100 + i)))
        assert await c.closed(timeout=10) == 4014
        assert c.error is not None and c.error.reason == "Node full: no CPU headroom"
        refused += 1
        await asyncio.sleep(0.05)
    await asyncio.sleep(max(0.0, 3.0 - (loop.time() - t0)))
    t1 = loop.time()
    stop.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert refused == 20 and n.node.metrics.refused["capacity"] >= 20
    assert "first" in n.node.rooms and len(n.node.rooms) == 1
    for k in counts:  # at least 19 of 20 patches per second, over the refusals' window
        got = sum(t0 <= t < t1 for t in k)
        assert got >= 19 * (t1 - t0) - 1, f"{got} patches in {t1 - t0:.2f} s"
    # the heartbeat says there is no room for more, and /metrics counts the refusals
    status = n.app[LOBBY_KEY].status()
    assert status["capacity"] == status["players"] == 4
    assert status["max_rooms"] == 1 and status["headroom"]["accepting_rooms"] is False
    code, text = await n.get("/metrics")
    assert code == 200 and 'arena_refused_total{limit="capacity"}' in text
    assert "arena_capacity_load " in text


async def test_within_its_budget_a_new_room_is_seated(make_node):
    n = await make_node(capacity_interval=0.1, capacity_window=0.5, **PLAYING)
    a = await n.player(token("first", 1))
    await asyncio.sleep(0.3)  # sampled a few times
    assert not n.node.capacity.full
    b = await n.player(token("second", 2))
    assert b.welcome is not None and len(n.node.rooms) == 2
    await a.close()
    await b.close()
