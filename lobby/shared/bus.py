"""The event bus: what the lobby pushes to browsers (docs/lobby.md, "Event stream").

One small interface, two implementations, chosen by `REDIS_URL` like the rest of
`lobby.shared`:

- `MemoryBus` (default): in this process, for the embedded lobby (one ASGI process);
- `RedisBus`: every channel is a Redis stream (`XADD ... MAXLEN KEEP`, expiring
  after `TTL` idle) and each event is also `PUBLISH`ed on the stream's key, in one Lua
  call. Each process holds one pub/sub connection for all its subscribers and reads the
  replay from the stream (`XRANGE`), so a subscriber that resumes from a last id misses
  nothing the stream still keeps, and an event published in one worker reaches a stream
  held by another.

`publish` is synchronous (Django views and the matcher call it) and thread-safe; a
subscription is an async iterator of `Event`s that never holds a thread while it waits.
Ids are Redis stream ids (`<ms>-<seq>`), increasing per channel.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("lobby.bus")

START = "0-0"        # the id before any event
KEEP = 200           # events kept per channel for replay
TTL = 600            # seconds a channel's events are kept after its last publish
QUEUE_MAX = 256      # events waiting in one subscription; past it the stream is closed
                     # (the browser reconnects with Last-Event-ID and replays)


def parse_id(event_id: str | None) -> tuple[int, int] | None:
    """`"<ms>-<seq>"` as a comparable pair; None for None, "" or garbage."""
    if not event_id:
        return None
    ms, _, seq = event_id.partition("-")
    try:
        return int(ms), int(seq or 0)
    except ValueError:
        return None


@dataclass(frozen=True)
class Event:
    channel: str
    id: str
    data: dict[str, Any]


@dataclass(eq=False)  # hashed by identity: a member of the subscriber sets
class Subscription:
    """Events of some channels, live, after the replay of those past each cursor.

    `cursors` start as the last ids the subscriber saw (None: only new events) and follow
    the events queued; `start` is where the subscription began on each channel (the last
    id given, or the channel's latest then, or `START` for a channel without events yet);
    `gap` is true when a cursor was older than the oldest event kept (the subscriber should
    reread the state)."""

    cursors: dict[str, str | None]
    start: dict[str, str] = field(default_factory=dict)
    loop: asyncio.AbstractEventLoop = field(default_factory=asyncio.get_running_loop)
    queue: asyncio.Queue = field(default_factory=lambda: asyncio.Queue(QUEUE_MAX))
    gap: bool = False
    overflow: bool = False
    bus: Bus | None = None

    def push(self, event: Event) -> None:
        """From any thread."""
        if self.loop.is_closed():
            return
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            self.loop.call_soon_threadsafe(self._put, event)

    def _put(self, event: Event) -> None:
        last = parse_id(self.cursors.get(event.channel))
        if last is not None and parse_id(event.id) <= last:
            return  # already delivered (replay and live overlap)
        if self.queue.full():
            self.overflow = True  # nothing more is queued: the stream closes after these
            return
        self.cursors[event.channel] = event.id
        self.queue.put_nowait(event)

    async def get(self, timeout: float) -> Event | None:
        """The next event, or None after `timeout` seconds without one."""
        try:
            return await asyncio.wait_for(self.queue.get(), timeout)
        except TimeoutError:
            return None

    async def close(self) -> None:
        if self.bus is not None:
            await self.bus.unsubscribe(self)
            self.bus = None


class Bus(ABC):
    @abstractmethod
    def publish(self, channel: str, data: dict[str, Any]) -> str:
        """Append an event to `channel` and deliver it to its subscribers; its id."""

    @abstractmethod
    async def subscribe(self, cursors: dict[str, str | None]) -> Subscription:
        """Subscribe to the channels of `cursors` (channel -> last id seen, or None); the
        events after each last id still kept are queued first."""

    @abstractmethod
    async def unsubscribe(self, sub: Subscription) -> None: ...

    def subscribers(self) -> int:
        return 0

    async def aclose(self) -> None:  # noqa: B027 - nothing to release by default
        """Release connections (the ASGI lifespan's shutdown)."""


class MemoryBus(Bus):
    """In this process: per channel a bounded deque of recent events, a set of subscribers."""

    def __init__(self, keep: int = KEEP, ttl: float = TTL):
        self.keep, self.ttl = keep, ttl
        self._lock = threading.Lock()
        self._logs: OrderedDict[str, tuple[float, deque[Event]]] = OrderedDict()
        self._subs: dict[str, set[Subscription]] = {}
        self._last = (0, 0)

    def _next_id(self) -> str:
        ms = int(time.time() * 1000)
        self._last = (ms, 0) if ms > self._last[0] else (self._last[0], self._last[1] + 1)
        return f"{self._last[0]}-{self._last[1]}"

    def publish(self, channel: str, data: dict[str, Any]) -> str:
        now = time.monotonic()
        with self._lock:
            event = Event(channel, self._next_id(), data)
            _, events = self._logs.pop(channel, (0.0, deque(maxlen=self.keep)))
            events.append(event)
            self._logs[channel] = (now, events)
            while self._logs:  # channels idle for ttl go (the oldest first)
                name, (at, _) = next(iter(self._logs.items()))
                if now - at < self.ttl:
                    break
                del self._logs[name]
            subs = list(self._subs.get(channel, ()))
        for sub in subs:
            sub.push(event)
        return event.id

    async def subscribe(self, cursors: dict[str, str | None]) -> Subscription:
        sub = Subscription(dict(cursors), bus=self)
        with self._lock:
            for channel, last in cursors.items():
                self._subs.setdefault(channel, set()).add(sub)
                events = self._logs.get(channel, (0.0, deque()))[1]
                last_id = parse_id(last)
                if last_id is None:
                    sub.cursors[channel] = sub.start[channel] = events[-1].id if events else START
                    continue
                sub.start[channel] = last
                if events and parse_id(events[0].id) > last_id:
                    sub.gap = True  # the last id seen is no longer kept
                for event in events:
                    if parse_id(event.id) > last_id:
                        sub._put(event)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            for channel in sub.cursors:
                subs = self._subs.get(channel)
                if subs is not None:
                    subs.discard(sub)
                    if not subs:
                        del self._subs[channel]

    def subscribers(self) -> int:
        with self._lock:
            return len({id(s) for subs in self._subs.values() for s in subs})


# XADD with a bounded length, the key's expiry, then PUBLISH "<id> <json>": one atomic step.
PUBLISH_LUA = """
local id = redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], '*', 'd', ARGV[2])
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('PUBLISH', KEYS[1], id .. ' ' .. ARGV[2])
return id
"""


class RedisBus(Bus):
    """Redis streams for replay, pub/sub for delivery; one pub/sub connection per process."""

    RECONNECT_DELAY = 0.5  # seconds between attempts while Redis is down

    def __init__(self, url: str, prefix: str, keep: int = KEEP, ttl: int = TTL):
        self.url, self.prefix, self.keep, self.ttl = url, prefix + "ev:", keep, ttl
        self._sync = None   # redis.Redis, for publish (made on first use)
        self._sync_lock = threading.Lock()
        self._script = None
        self._async = None  # redis.asyncio.Redis, in the subscribers' loop
        self._pubsub = None
        self._reader: asyncio.Task | None = None
        self._subs: dict[str, set[Subscription]] = {}
        self._ready: asyncio.Event | None = None

    def key(self, channel: str) -> str:
        return self.prefix + channel

    # -- publishing (sync, any thread) -------------------------------------------------
    def publish(self, channel: str, data: dict[str, Any]) -> str:
        with self._sync_lock:
            if self._sync is None:
                from .client import connect

                self._sync = connect(self.url)
                self._script = self._sync.register_script(PUBLISH_LUA)
        return self._script(keys=[self.key(channel)],
                            args=[self.keep, json.dumps(data, separators=(",", ":")), self.ttl])

    # -- subscribing (async, one loop) -------------------------------------------------
    async def _connect(self) -> None:
        import redis.asyncio as aredis

        if self._async is None:
            self._async = aredis.Redis.from_url(self.url, decode_responses=True,
                                                socket_connect_timeout=2, socket_keepalive=True)
            self._pubsub = self._async.pubsub()
            # always subscribed to something, so the reader's get_message waits on the socket
            await self._pubsub.subscribe(self.prefix + "-")
            self._reader = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        """Deliver published events to local subscribers; after a lost connection,
        resubscribe and read what was missed from the streams."""
        lost = False
        while True:
            try:
                if lost:  # a fresh pub/sub connection, then what the streams kept meanwhile
                    with contextlib.suppress(Exception):  # the old connection is gone anyway
                        await self._pubsub.aclose()
                    pubsub = self._async.pubsub()
                    await pubsub.subscribe(self.prefix + "-", *[self.key(c) for c in self._subs])
                    self._pubsub = pubsub
                    for channel, subs in list(self._subs.items()):
                        for sub in list(subs):
                            await self._replay(sub, channel, sub.cursors.get(channel))
                    lost = False
                    log.info("event bus: Redis connection back")
                msg = await self._pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
                if msg is None or msg.get("type") != "message":
                    continue
                key, payload = msg["channel"], msg["data"]
                event_id, _, raw = payload.partition(" ")
                channel = key[len(self.prefix):]
                event = Event(channel, event_id, json.loads(raw))
                for sub in list(self._subs.get(channel, ())):
                    sub._put(event)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - Redis down: retry until it is back
                if not lost:
                    log.warning("event bus: Redis connection lost (%s); retrying", exc)
                lost = True
                await asyncio.sleep(self.RECONNECT_DELAY)

    async def _replay(self, sub: Subscription, channel: str, last: str | None) -> None:
        start = "-" if last is None else f"({last}"
        rows = await self._async.xrange(self.key(channel), start, "+")
        for event_id, fields in rows:
            sub._put(Event(channel, event_id, json.loads(fields["d"])))

    async def subscribe(self, cursors: dict[str, str | None]) -> Subscription:
        await self._connect()
        sub = Subscription(dict(cursors), bus=self)
        new = [c for c in cursors if c not in self._subs]
        for channel in cursors:
            self._subs.setdefault(channel, set()).add(sub)
        if new:  # subscribed before the replay is read: nothing falls in between
            await self._pubsub.subscribe(*[self.key(c) for c in new])
        for channel, last in cursors.items():
            if parse_id(last) is None:
                rows = await self._async.xrevrange(self.key(channel), "+", "-", count=1)
                sub.cursors[channel] = sub.start[channel] = rows[0][0] if rows else START
                continue
            sub.start[channel] = last
            first = await self._async.xrange(self.key(channel), "-", "+", count=1)
            if first and parse_id(first[0][0]) > parse_id(last):
                sub.gap = True  # the last id seen is no longer kept
            await self._replay(sub, channel, last)
        return sub

    async def unsubscribe(self, sub: Subscription) -> None:
        gone = []
        for channel in sub.cursors:
            subs = self._subs.get(channel)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._subs[channel]
                    gone.append(self.key(channel))
        if gone and self._pubsub is not None:
            with contextlib.suppress(Exception):  # Redis down: the reader resubscribes live ones
                await self._pubsub.unsubscribe(*gone)

    def subscribers(self) -> int:
        return len({id(s) for subs in self._subs.values() for s in subs})

    async def aclose(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._pubsub is not None:
            await self._pubsub.aclose()
        if self._async is not None:
            await self._async.aclose()
        self._reader = self._pubsub = self._async = None


_bus: Bus | None = None
_lock = threading.Lock()


def build(redis_url: str, prefix: str) -> Bus:
    return RedisBus(redis_url, prefix) if redis_url else MemoryBus()


def bus() -> Bus:
    """This process's bus (REDIS_URL decides), built on first use."""
    global _bus
    if _bus is None:
        with _lock:
            if _bus is None:
                from django.conf import settings

                _bus = build(settings.REDIS_URL, settings.REDIS_PREFIX)
    return _bus


def reset() -> None:
    """Forget the bus (tests that change REDIS_URL)."""
    global _bus
    _bus = None
