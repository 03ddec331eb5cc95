"""A node's shared state: presence and cross-node events, and the used seat-token ids.

Each piece is a small interface with an in-process default and a Redis implementation
(`redis.asyncio`); `build_shared(redis_url, ...)` is the one place that chooses, from
`REDIS_URL` (docs/scale-out.md).

- `PresenceBoard`: the node publishes, every `presence_interval` seconds, who is seated in
  its rooms (user id -> match id, connected); anyone reads where a player is. Changes
  between two publications go out as events (`seated`, `left`, `match_ended`) that other
  nodes or the lobby may subscribe to. With Redis, entries expire `PRESENCE_TTL_FACTOR`
  intervals after the last publication, so a killed node's players vanish by themselves.
- `JtiStore`: single-use seat tokens. Tokens are bound to one node, so per-node is enough;
  the Redis store also survives a restart of the node within a token's lifetime.

Redis keys (prefix `REDIS_PREFIX`, default `arena:`): presence in `shared_keys.PresenceKeys`
(the lobby reads them too), seat-token ids in `RedisJti`.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from redis import asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.exceptions import TimeoutError as RedisTimeoutError

from shared_keys import DEFAULT_PREFIX, presence_keys

log = logging.getLogger(__name__)

PRESENCE_TTL_FACTOR = 3      # presence entries live this many publish intervals
SOCKET_TIMEOUT = 2.0         # seconds per Redis command and connection attempt
RETRIES = 3                  # quick reconnection attempts per command (20, 40, 80 ms apart)
EVENT_QUEUE = 1000           # in-process subscriber backlog; beyond it events are dropped

#: what a node publishes: user id -> (match id, connected now)
Snapshot = dict[int, tuple[str, bool]]


def diff_events(node_id: str, before: Snapshot, after: Snapshot) -> list[dict]:
    """The events between two snapshots of one node: seated, left, match_ended."""
    events: list[dict] = []
    for uid, (match_id, _) in after.items():
        if before.get(uid, ("",))[0] != match_id:
            events.append({"type": "seated", "node_id": node_id, "user_id": uid,
                           "match_id": match_id})
    for uid, (match_id, _) in before.items():
        if after.get(uid, ("",))[0] != match_id:
            events.append({"type": "left", "node_id": node_id, "user_id": uid,
                           "match_id": match_id})
    ended = {m for m, _ in before.values()} - {m for m, _ in after.values()}
    events += [{"type": "match_ended", "node_id": node_id, "match_id": m} for m in sorted(ended)]
    return events


# --- presence --------------------------------------------------------------------------

class PresenceBoard(ABC):
    @abstractmethod
    async def publish(self, node_id: str, players: Snapshot, ttl: float) -> None:
        """Replace what `node_id` has published with `players` (valid `ttl` seconds)."""

    @abstractmethod
    async def where(self, user_id: int) -> dict | None:
        """`{"node_id", "match_id", "connected"}` or None."""

    @abstractmethod
    async def emit(self, event: dict) -> None:
        """Send an event to every subscriber (every node and lobby on this state)."""

    @abstractmethod
    def subscribe(self) -> AsyncIterator[dict]:
        """Events from now on, as an async iterator (stops when the board closes)."""

    async def close(self) -> None:
        return None


class InProcessPresence(PresenceBoard):
    """One process: dicts, and an asyncio queue per subscriber."""

    def __init__(self, clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self.by_node: dict[str, tuple[float, Snapshot]] = {}  # node -> (expiry, players)
        self.queues: set[asyncio.Queue] = set()

    async def publish(self, node_id: str, players: Snapshot, ttl: float) -> None:
        self.by_node[node_id] = (self.clock() + ttl, dict(players))

    async def where(self, user_id: int) -> dict | None:
        now = self.clock()
        for node_id, (expiry, players) in self.by_node.items():
            if expiry > now and user_id in players:
                match_id, connected = players[user_id]
                return {"node_id": node_id, "match_id": match_id, "connected": connected}
        return None

    async def emit(self, event: dict) -> None:
        for q in self.queues:
            if q.qsize() < EVENT_QUEUE:
                q.put_nowait(event)

    async def subscribe(self) -> AsyncIterator[dict]:
        q: asyncio.Queue = asyncio.Queue()
        self.queues.add(q)
        try:
            while True:
                event = await q.get()
                if event is None:
                    return
                yield event
        finally:
            self.queues.discard(q)

    async def close(self) -> None:
        for q in self.queues:
            q.put_nowait(None)


# KEYS[1] node hash, KEYS[2] nodes set; ARGV: ttl ms, node id, user key prefix, JSON
# {user id: {"match_id", "connected"}}. Users gone from the node lose their user key only
# if it still points at this node (they may be on another one now).
PUBLISH_LUA = """
local players = cjson.decode(ARGV[4])
local old = redis.call('HKEYS', KEYS[1])
redis.call('DEL', KEYS[1])
for _, uid in ipairs(old) do
  if players[uid] == nil then
    local cur = redis.call('GET', ARGV[3] .. uid)
    if cur and cjson.decode(cur).node_id == ARGV[2] then redis.call('DEL', ARGV[3] .. uid) end
  end
end
local n = 0
for uid, p in pairs(players) do
  redis.call('HSET', KEYS[1], uid, cjson.encode(p))
  redis.call('SET', ARGV[3] .. uid, cjson.encode({node_id = ARGV[2], match_id = p.match_id,
             connected = p.connected}), 'PX', ARGV[1])
  n = n + 1
end
if n > 0 then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
  redis.call('SADD', KEYS[2], ARGV[2])
else
  redis.call('SREM', KEYS[2], ARGV[2])
end
return n
"""


class RedisPresence(PresenceBoard):
    """Keys of `PresenceKeys`; one atomic script per publication; events on pub/sub."""

    def __init__(self, r: aioredis.Redis, prefix: str = DEFAULT_PREFIX):
        self.r, self.keys = r, presence_keys(prefix)
        self._publish = r.register_script(PUBLISH_LUA)
        self._closed = asyncio.Event()

    async def publish(self, node_id: str, players: Snapshot, ttl: float) -> None:
        body = json.dumps({str(uid): {"match_id": m, "connected": c}
                           for uid, (m, c) in players.items()}, separators=(",", ":"))
        await self._publish(keys=[self.keys.node(node_id), self.keys.nodes],
                            args=[max(1, int(ttl * 1000)), node_id, self.keys.user(""), body])

    async def where(self, user_id: int) -> dict | None:
        raw = await self.r.get(self.keys.user(user_id))
        return json.loads(raw) if raw else None

    async def emit(self, event: dict) -> None:
        await self.r.publish(self.keys.events, json.dumps(event, separators=(",", ":")))

    async def subscribe(self) -> AsyncIterator[dict]:
        pubsub = self.r.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.keys.events)
        try:
            while not self._closed.is_set():
                msg = await pubsub.get_message(timeout=0.2)
                if msg is not None and msg["type"] == "message":
                    yield json.loads(msg["data"])
        finally:
            with contextlib.suppress(RedisError, OSError):
                await pubsub.aclose()

    async def close(self) -> None:
        self._closed.set()


# --- single-use seat tokens -------------------------------------------------------------

class JtiStore(ABC):
    @abstractmethod
    async def claim(self, jti: str, exp: float, now: float) -> bool:
        """True the first time `jti` is used; remembered until the token expires (`exp`)."""


class InProcessJti(JtiStore):
    PURGE_EVERY = 10.0  # seconds

    def __init__(self) -> None:
        self.used: dict[str, float] = {}
        self._purged = 0.0

    async def claim(self, jti: str, exp: float, now: float) -> bool:
        if now - self._purged >= self.PURGE_EVERY:
            self._purged = now
            self.used = {j: e for j, e in self.used.items() if e >= now - 1}
        if jti in self.used:
            return False
        self.used[jti] = exp
        return True


class RedisJti(JtiStore):
    """`SET <prefix>jti:<node>:<jti> 1 NX PX <until exp + 1 s>`."""

    def __init__(self, r: aioredis.Redis, prefix: str, node_id: str):
        self.r, self.prefix = r, f"{prefix}jti:{node_id}:"

    async def claim(self, jti: str, exp: float, now: float) -> bool:
        ttl_ms = max(1000, int((exp - now + 1) * 1000))
        return bool(await self.r.set(self.prefix + jti, "1", nx=True, px=ttl_ms))


# --- the publisher and the factory ------------------------------------------------------

class PresencePublisher:
    """Publishes `snapshot()` every `interval` seconds and emits the changes as events.

    Redis errors are logged and retried at the next interval (the client reconnects by
    itself); `close()` publishes an empty list, so a node that stops leaves no presence.
    """

    def __init__(self, board: PresenceBoard, node_id: str, snapshot: Callable[[], Snapshot],
                 interval: float):
        self.board, self.node_id, self.snapshot, self.interval = board, node_id, snapshot, interval
        self.ttl = PRESENCE_TTL_FACTOR * interval
        self.last: Snapshot = {}
        self.published = 0
        self.failures = 0
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="presence")

    async def _run(self) -> None:
        while True:
            await self.publish_once()
            await asyncio.sleep(self.interval)

    async def publish_once(self, players: Snapshot | None = None) -> bool:
        """One publication; True if it reached the board. Never raises."""
        now = self.snapshot() if players is None else players
        try:
            await self.board.publish(self.node_id, now, self.ttl)
            for event in diff_events(self.node_id, self.last, now):
                await self.board.emit(event)
        except (RedisError, OSError) as e:
            if self.failures % 30 == 0:
                log.warning("presence: publication failed (%s); retrying", e)
            self.failures += 1
            return False
        self.last = now
        self.published += 1
        self.failures = 0
        return True

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.publish_once({})


@dataclass
class NodeShared:
    presence: PresenceBoard
    jti: JtiStore
    redis: aioredis.Redis | None = None

    async def close(self) -> None:
        await self.presence.close()
        if self.redis is not None:
            await self.redis.aclose()


def connect(url: str) -> aioredis.Redis:
    """An asyncio client from `REDIS_URL`: short timeouts, reconnects on the next call."""
    return aioredis.Redis.from_url(
        url, decode_responses=True, socket_timeout=SOCKET_TIMEOUT,
        socket_connect_timeout=SOCKET_TIMEOUT, socket_keepalive=True,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.01), RETRIES),
        retry_on_error=[RedisConnectionError, RedisTimeoutError, ConnectionResetError],
        health_check_interval=30)


def build_shared(redis_url: str, *, prefix: str = DEFAULT_PREFIX, node_id: str) -> NodeShared:
    """The one place that chooses: in-process without `redis_url`, Redis with it."""
    if not redis_url:
        return NodeShared(InProcessPresence(), InProcessJti())
    r = connect(redis_url)
    return NodeShared(RedisPresence(r, prefix), RedisJti(r, prefix, node_id), r)
