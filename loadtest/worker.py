"""One worker process: an asyncio loop running its share of the bots.

The parent hands each worker a list of bot indices. Bot `i` starts at
`start + ramp * i / bots`, so the ramp is global across workers. Once a second the
worker sends the parent a snapshot: gauges (how many bots are where) and everything
measured since the previous snapshot (a `stats.Group` per bot class), so the parent
merges increments and never double counts. At the deadline (or when the parent's stop
event is set) every bot leaves its match or cancels its ticket, and the worker sends its
last snapshot with per-bot totals.
"""

from __future__ import annotations

import asyncio
import os
import resource
import signal
import time
from collections import Counter
from dataclasses import dataclass

import aiohttp

from loadtest.bot import Bot, BotConfig
from loadtest.shared import SharedRooms

try:
    import uvloop
except ImportError:  # optional: the bots then run on asyncio's own loop
    uvloop = None
from loadtest.stats import Group

SNAPSHOT_INTERVAL = 1.0
STOP_GRACE = 10.0
LAG_PROBE_INTERVAL = 0.05  # seconds bots get to leave and cancel tickets before being cancelled


@dataclass(frozen=True)
class WorkerPlan:
    worker_id: int
    indices: tuple[int, ...]
    total_bots: int
    ramp: float
    duration: float          # seconds of the run after the ramp
    slow_fraction: float
    bot: BotConfig
    nice: int = 0            # os.nice() increment of the worker process


def is_slow(index: int, fraction: float) -> bool:
    """Spread slow bots evenly over the indices: exactly round(fraction * N) of N."""
    return int((index + 1) * fraction) > int(index * fraction)


def raise_fd_limit() -> None:
    """Each bot holds a node connection and a lobby connection."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def worker_main(plan: WorkerPlan, out, go, start_at, stop) -> None:
    """Process entry point. `out` is a multiprocessing queue; `go`/`stop` are events;
    `start_at` a shared double: the monotonic time (system-wide on Linux) of bot 0."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it sets `stop`
    raise_fd_limit()
    if plan.nice:
        os.nice(plan.nice)
    out.put(("ready", plan.worker_id, os.getpid()))
    go.wait()
    run = uvloop.run if event_loop_name() == "uvloop" else asyncio.run
    profile_to = os.environ.get("LOADTEST_PROFILE")  # a path prefix: cProfile each worker
    if not profile_to:
        run(Worker(plan, out, start_at.value, stop).run())
        return
    import cProfile

    # CPU time, not wall time: a wall-clock profile of an event loop bills its idle waits
    # to the loop's run function
    with cProfile.Profile(time.process_time) as prof:
        run(Worker(plan, out, start_at.value, stop).run())
    prof.dump_stats(f"{profile_to}.worker{plan.worker_id}.prof")


def event_loop_name() -> str:
    """The bots' event loop: uvloop if it is installed (about a third less CPU per bot),
    else asyncio's; LOADTEST_LOOP=asyncio forces asyncio's."""
    if uvloop is None or os.environ.get("LOADTEST_LOOP", "auto") == "asyncio":
        return "asyncio"
    return "uvloop"


class InputTicker:
    """One timer per worker sends every bot's inputs: `SLOTS` groups of bots (by index)
    take turns, so each bot gets a slot every 1/input_hz s, spread evenly, without a timer
    per bot (20,000 timer wake-ups a second for 1,000 bots would cost more than the sends)."""

    SLOTS = 10

    def __init__(self, bots: list[Bot], input_hz: float, groups: dict[str, Group]):
        self.bots = bots
        self.step = 1.0 / input_hz / self.SLOTS
        self.groups = groups

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        due = loop.time()
        slot = 0
        while True:
            delay = due - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            now = loop.time()
            done = 0
            while due <= now and done < self.SLOTS:  # every slot that is due, in order
                for bot in self.bots[slot::self.SLOTS]:
                    pending = bot.tick(now)  # None: sent already (raw websocket)
                    if pending is not None:
                        await pending
                slot = (slot + 1) % self.SLOTS
                due += self.step
                done += 1
            if due <= now:  # more than a whole round late (overloaded): skip, don't burst
                self.groups["normal"].counters["input_slots_skipped"] += 1
                due = now + self.step


class Worker:
    def __init__(self, plan: WorkerPlan, out, start: float, stop_flag) -> None:
        self.plan = plan
        self.out = out
        self.start = start
        self.stop_flag = stop_flag
        self.deadline = start + plan.ramp + plan.duration
        self.groups = {"normal": Group(), "slow": Group()}
        self.bots: list[Bot] = []
        self.shared = SharedRooms()  # each room's last delta, decoded and applied once here

    def _snapshot(self, final: bool = False) -> dict:
        for bot in self.bots:
            bot.flush_bytes()
        states = Counter(bot.state for bot in self.bots)
        connected = sum(1 for bot in self.bots if bot.conn is not None)
        groups = {name: group.take() for name, group in self.groups.items()}
        snap = {
            "worker": self.plan.worker_id,
            "t": time.monotonic(),
            "gauges": {"started": len(self.bots), "lobby": states["lobby"], "queued": states["queued"],
                       "connecting": states["connecting"], "connected": connected,
                       "in_match": states["playing"], "done": states["done"]},
            "groups": groups,
        }
        if final:
            snap["bots"] = [{"index": b.index, "group": b.group_name, "transport": b.transport,
                             "bytes_in": b.total_in, "bytes_out": b.total_out, "matches": b.matches,
                             "frames": b.frames, "frames_expected": b.frames_expected}
                            for b in self.bots]
        return snap

    async def _lag_probe(self) -> None:
        """How late this loop wakes up: if the bots' own loop lags, every latency the bots
        measure includes that lag (the report shows it as `bot_loop_lag_ms`)."""
        while True:
            due = time.monotonic() + LAG_PROBE_INTERVAL
            await asyncio.sleep(LAG_PROBE_INTERVAL)
            self.groups["normal"].hist["bot_loop_lag"].record(max(1e-6, time.monotonic() - due))

    async def run(self) -> None:
        plan = self.plan
        stop = asyncio.Event()
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        http_node = aiohttp.ClientSession(connector=connector, cookie_jar=aiohttp.DummyCookieJar())
        tasks: list[asyncio.Task] = []

        async def launch() -> None:
            for index in plan.indices:
                at = self.start + plan.ramp * index / max(1, plan.total_bots)
                delay = at - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                if stop.is_set():
                    return
                bot = Bot(index, plan.bot, http_node, self.groups, stop,
                          slow=is_slow(index, plan.slow_fraction), shared=self.shared)
                self.bots.append(bot)
                tasks.append(asyncio.create_task(bot.run()))

        launcher = asyncio.create_task(launch())
        probe = asyncio.create_task(self._lag_probe())
        ticker = asyncio.create_task(InputTicker(self.bots, plan.bot.input_hz, self.groups).run())
        try:
            while time.monotonic() < self.deadline and not self.stop_flag.is_set():
                await asyncio.sleep(min(SNAPSHOT_INTERVAL, max(0.0, self.deadline - time.monotonic())))
                self.out.put(("snap", plan.worker_id, self._snapshot()))
        finally:
            stop.set()
            launcher.cancel()
            probe.cancel()
            ticker.cancel()
            if tasks:
                _, late = await asyncio.wait(tasks, timeout=STOP_GRACE)
                for task in late:
                    task.cancel()
                if late:
                    self.groups["normal"].errors["bot did not stop in time"] += len(late)
                    await asyncio.wait(late, timeout=2.0)
            for task in tasks:
                if task.done() and not task.cancelled() and task.exception() is not None:
                    exc = task.exception()
                    self.groups["normal"].errors[f"bot crashed: {type(exc).__name__}: {exc}"[:120]] += 1
            await http_node.close()
            self.out.put(("final", plan.worker_id, self._snapshot(final=True)))
