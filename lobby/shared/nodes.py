"""The game-node registry: heartbeats, live nodes with their load, and reservations.

`reserve` picks, for each match to place, the least-loaded live node that runs the match's
mode and fits it, and adds the match to that node's `pending` counts in the same atomic step, so two workers (or two
hosts) placing matches at once never overfill one node. A heartbeat takes off `pending` what
the node seated since the last one (`carry_pending`: its cumulative `seated_total` and
`rooms_total`), so seats placed but not yet taken stay counted; they are forgotten once
their tokens have expired, or when the node restarted (another `boot`). A heartbeat
without those counters (an older node) resets `pending`.

Whatever the registry, the `Node` *row* stays in the database (matches refer to it, the
admin shows it); the row's `alive` flag is what node expiry acts on.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Literal

import redis
from django.db import IntegrityError, transaction
from django.db.models import F


@dataclass
class NodeInfo:
    node_id: str
    url: str
    capacity: int          # players it accepts
    max_rooms: int         # rooms it accepts; 0 = not reported
    rooms: int
    players: int
    draining: bool
    last_seen: float       # Unix time of its last heartbeat
    pending: int = 0       # human seats placed there, not yet in its counts
    pending_rooms: int = 0  # matches placed there, their room not yet open
    modes: tuple[str, ...] = ()  # the modes it runs (its heartbeat's `modes`)
    # its rooms for Live now (its heartbeat's `matches`): [{match_id, left, top}]
    live: tuple[dict, ...] = ()
    # the heartbeat's counters since the node process started ("" / 0: an older node)
    boot: str = ""         # random id of the node process
    seated_total: int = 0  # fresh player seats it created from seat tokens
    rooms_total: int = 0   # rooms it opened for seat tokens

    @property
    def load(self) -> float:
        return (self.players + self.pending) / max(self.capacity, 1)

    def fits(self, seats: int) -> bool:
        if self.players + self.pending + seats > self.capacity:
            return False
        return not self.max_rooms or self.rooms + self.pending_rooms < self.max_rooms

    def runs(self, mode: str | None) -> bool:
        return mode is None or mode in self.modes


# What a registry raises when its store is unreachable (the middleware answers 503).
UNREACHABLE = (redis.ConnectionError, redis.TimeoutError)

# Why a mode has no node for a new match (ModeState); "ok" when one can take it.
OK, NO_NODE_FOR_MODE, SERVERS_FULL = "ok", "no_node_for_mode", "servers_full"
ModeState = Literal["ok", "no_node_for_mode", "servers_full"]


def mode_state(nodes: list[NodeInfo], mode: str) -> ModeState:
    """Among live nodes: none that is not draining runs `mode`, or all that do are full."""
    running = [n for n in nodes if not n.draining and n.runs(mode)]
    if not running:
        return NO_NODE_FOR_MODE
    return OK if any(n.fits(1) for n in running) else SERVERS_FULL


def pick(nodes: list[NodeInfo], seats: int, mode: str | None = None) -> NodeInfo | None:
    """The least-loaded node that runs `mode` and fits `seats` (then fewest rooms, then
    node id)."""
    fitting = [n for n in nodes if n.runs(mode) and n.fits(seats)]
    if not fitting:
        return None
    return min(fitting, key=lambda n: (n.load, n.rooms + n.pending_rooms, n.node_id))


class NodeRegistry(ABC):
    def __init__(self, timeout: float):
        self.timeout = timeout  # seconds without a heartbeat before a node counts as dead

    @abstractmethod
    def heartbeat(self, info: NodeInfo) -> None:
        """Record the node's status, mark it alive, carry its pending counts over
        (`carry_pending`, atomic with `reserve`)."""

    @abstractmethod
    def alive(self, now: float) -> list[NodeInfo]:
        """Nodes heard from within `timeout` (draining ones included)."""

    @abstractmethod
    def reserve(self, groups: list[int], now: float,
                modes: list[str] | None = None) -> list[str | None]:
        """For each match of `groups[i]` human seats (and mode `modes[i]`, when given), in
        order: the node id it goes to (least loaded live, not draining, running the mode,
        fitting), or None when none fits. Atomic."""

    @abstractmethod
    def dead(self, candidates: list[str], now: float) -> list[str]:
        """Among node ids the database believes alive, those past `timeout`."""

    def available(self, now: float) -> bool:
        """Any live node that is not draining."""
        return any(not n.draining for n in self.alive(now))

    def mode_state(self, mode: str, now: float) -> ModeState:
        """Whether a live node can take a new match of `mode` (the queue's check)."""
        return mode_state(self.alive(now), mode)


# Seats placed on a node stay pending at least this long past SEAT_TOKEN_TTL (the seat
# appears in the node's next heartbeat, up to one interval after the join), at most twice
# the whole window (`carry_pending`).
PENDING_GRACE = 10.0


def pending_window() -> float:
    """Seconds after which a placed seat nobody took can no longer be taken."""
    from django.conf import settings

    return settings.SEAT_TOKEN_TTL + PENDING_GRACE


@dataclass(frozen=True)
class Pending:
    """A node's placed seats not yet in its own counts, and what carries them across its
    heartbeats."""

    seats: int = 0          # human seats placed, not yet seated (NodeInfo.pending)
    rooms: int = 0          # matches placed, their room not yet open (pending_rooms)
    old_seats: int = 0      # the part of `seats` placed before `since`
    old_rooms: int = 0
    since: float = 0.0      # when the current generation began
    boot: str = ""          # the node process these counters are from
    seated_total: int = 0   # its counters at the last heartbeat
    rooms_total: int = 0


def carry_pending(kept: Pending, info: NodeInfo, window: float) -> Pending:
    """The pending counts after heartbeat `info`. The one rule; HEARTBEAT_LUA mirrors it.

    - no `boot` (an older node) or another boot (it restarted): 0, its counters kept;
    - same boot: the seats and rooms it created since the last heartbeat come off, the
      oldest generation first, never below 0;
    - generations: once `window` has passed since the current one began, the previous
      one's seats (all placed more than `window` ago: their tokens expired) are dropped and
      the current one becomes the previous. A seat nobody takes is so forgotten after
      between `window` and twice that, even on a node that gets placements all the time.
    """
    now = info.last_seen
    if not info.boot or info.boot != kept.boot:
        return Pending(since=now, boot=info.boot, seated_total=info.seated_total,
                       rooms_total=info.rooms_total)
    seated = max(0, info.seated_total - kept.seated_total)
    opened = max(0, info.rooms_total - kept.rooms_total)
    seats, rooms = max(0, kept.seats - seated), max(0, kept.rooms - opened)
    old_seats = max(0, min(kept.old_seats, kept.seats) - seated)
    old_rooms = max(0, min(kept.old_rooms, kept.rooms) - opened)
    since = kept.since
    if now - since >= window:
        seats, rooms = seats - old_seats, rooms - old_rooms
        old_seats, old_rooms, since = seats, rooms, now
    return Pending(seats, rooms, old_seats, old_rooms, since, info.boot,
                   max(kept.seated_total, info.seated_total),
                   max(kept.rooms_total, info.rooms_total))


def _dt(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, tz=UTC)


def upsert_row(info: NodeInfo, window: float | None = None) -> None:
    """Create or update the `Node` row from a heartbeat; alive again. With `window` (the
    database registry) its pending counts carry over (`carry_pending`, the row locked
    against a concurrent `reserve`); without (Redis keeps them), they stay 0."""
    from lobby.matchmaking.models import Node

    fields = {"url": info.url, "capacity": info.capacity, "max_rooms": info.max_rooms,
              "rooms": info.rooms, "players": info.players, "draining": info.draining,
              "alive": True, "last_seen": _dt(info.last_seen),
              "modes": list(info.modes), "live": list(info.live)}
    if window is None:
        fields.update(pending=0, pending_rooms=0)
        try:
            with transaction.atomic():
                Node.objects.update_or_create(node_id=info.node_id, defaults=fields)
        except IntegrityError:  # two first heartbeats of one node raced: the other created it
            Node.objects.filter(node_id=info.node_id).update(**fields)
        return
    for attempt in (1, 2):
        try:
            with transaction.atomic():
                row = Node.objects.select_for_update().filter(node_id=info.node_id).first()
                kept = Pending() if row is None else Pending(
                    row.pending, row.pending_rooms, row.pending_old, row.pending_rooms_old,
                    row.pending_since.timestamp() if row.pending_since else 0.0, row.boot,
                    row.seated_total, row.rooms_total)
                new = carry_pending(kept, info, window)
                fields.update(pending=new.seats, pending_rooms=new.rooms,
                              pending_old=new.old_seats, pending_rooms_old=new.old_rooms,
                              pending_since=_dt(new.since), boot=new.boot,
                              seated_total=new.seated_total, rooms_total=new.rooms_total)
                if row is None:
                    Node.objects.create(node_id=info.node_id, **fields)
                else:  # saved, not .update(): post_save publishes Live now (realtime.signals)
                    for name, value in fields.items():
                        setattr(row, name, value)
                    row.save(update_fields=list(fields))
            return
        except IntegrityError:  # two first heartbeats of one node raced: the other created it
            if attempt == 2:
                raise


_NODE_COLUMNS = ("node_id", "url", "capacity", "max_rooms", "rooms", "players", "draining",
                 "last_seen", "pending", "pending_rooms", "modes", "live")


class DbNodeRegistry(NodeRegistry):
    """The `Node` rows are the registry; `reserve` locks the rows it reads."""

    def heartbeat(self, info: NodeInfo) -> None:
        upsert_row(info, pending_window())

    def _live_rows(self, now: float):
        from lobby.matchmaking.models import Node

        return Node.objects.filter(alive=True, last_seen__gte=_dt(now - self.timeout))

    @staticmethod
    def _infos(rows) -> list[NodeInfo]:
        """The NodeInfo of each row of `values_list(*_NODE_COLUMNS)` (columns, not model
        instances); a row read without the last column, `live`, lists no rooms."""
        return [NodeInfo(node_id, url, capacity, max_rooms, rooms, players, draining,
                         last_seen.timestamp(), pending, pending_rooms, tuple(modes or ()),
                         tuple(live[0] or ()) if live else ())
                for node_id, url, capacity, max_rooms, rooms, players, draining, last_seen,
                pending, pending_rooms, modes, *live in rows]

    def alive(self, now: float) -> list[NodeInfo]:
        return self._infos(self._live_rows(now).order_by("id").values_list(*_NODE_COLUMNS))

    def mode_state(self, mode: str, now: float) -> ModeState:
        # what the check reads, without the rooms listed for Live now (`live`)
        return mode_state(self._infos(self._live_rows(now).values_list(*_NODE_COLUMNS[:-1])),
                          mode)

    def reserve(self, groups: list[int], now: float,
                modes: list[str] | None = None) -> list[str | None]:
        from lobby.matchmaking.models import Node

        with transaction.atomic():
            # Locked before reading the counts (PostgreSQL; SQLite serializes writers), so a
            # concurrent reserve or heartbeat waits for this one's pending counts.
            nodes = self._infos(self._live_rows(now).filter(draining=False).order_by("id")
                                .select_for_update().values_list(*_NODE_COLUMNS))
            chosen: list[str | None] = []
            for i, seats in enumerate(groups):
                node = pick(nodes, seats, modes[i] if modes else None)
                if node is not None:
                    node.pending += seats
                    node.pending_rooms += 1
                chosen.append(node and node.node_id)
            seats_by: Counter[str] = Counter()
            for seats, node_id in zip(groups, chosen, strict=True):
                if node_id is not None:
                    seats_by[node_id] += seats
            rooms_by = Counter(c for c in chosen if c is not None)
            for node_id, rooms in rooms_by.items():
                Node.objects.filter(node_id=node_id).update(
                    pending=F("pending") + seats_by[node_id], pending_rooms=F("pending_rooms") + rooms)
        return chosen

    def dead(self, candidates: list[str], now: float) -> list[str]:
        from lobby.matchmaking.models import Node

        return list(Node.objects.filter(node_id__in=candidates, last_seen__lt=_dt(now - self.timeout))
                    .values_list("node_id", flat=True))

    def available(self, now: float) -> bool:
        from lobby.matchmaking.models import Node

        return Node.objects.filter(alive=True, draining=False,
                                   last_seen__gte=_dt(now - self.timeout)).exists()


# KEYS[1] the index set; ARGV: node key prefix, cutoff time, then per match its seat count
# and its mode ('' = any). Picks like `pick()` above (a node's `modes` field is the comma
# list it runs) and adds the match to the chosen node's pending counts.
RESERVE_LUA = """
local nodes = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local key = ARGV[1] .. id
  local v = redis.call('HMGET', key, 'capacity', 'max_rooms', 'rooms', 'players', 'draining',
                       'last_seen', 'pending', 'pending_rooms', 'modes')
  if not v[1] then
    redis.call('SREM', KEYS[1], id)
  elseif tonumber(v[6]) >= tonumber(ARGV[2]) and v[5] == '0' then
    nodes[#nodes + 1] = {id = id, key = key, cap = tonumber(v[1]), max_rooms = tonumber(v[2]),
      rooms = tonumber(v[3]), players = tonumber(v[4]), pending = tonumber(v[7]),
      pending_rooms = tonumber(v[8]), modes = ',' .. (v[9] or '') .. ','}
  end
end
local out = {}
for i = 3, #ARGV, 2 do
  local seats = tonumber(ARGV[i])
  local want = ',' .. ARGV[i + 1] .. ','
  local best, best_load = nil, nil
  for _, n in ipairs(nodes) do
    if n.players + n.pending + seats <= n.cap
       and (n.max_rooms == 0 or n.rooms + n.pending_rooms < n.max_rooms)
       and (want == ',,' or string.find(n.modes, want, 1, true)) then
      local load = (n.players + n.pending) / math.max(n.cap, 1)
      if best == nil or load < best_load
         or (load == best_load and (n.rooms + n.pending_rooms < best.rooms + best.pending_rooms
             or (n.rooms + n.pending_rooms == best.rooms + best.pending_rooms and n.id < best.id))) then
        best, best_load = n, load
      end
    end
  end
  if best then
    best.pending = best.pending + seats
    best.pending_rooms = best.pending_rooms + 1
    redis.call('HINCRBY', best.key, 'pending', seats)
    redis.call('HINCRBY', best.key, 'pending_rooms', 1)
    out[#out + 1] = best.id
  else
    out[#out + 1] = ''
  end
end
return out
"""

# KEYS[1] the node's hash, KEYS[2] the index set; ARGV: ttl ms, node id, the heartbeat's
# time, the pending window, boot, seated_total, rooms_total, then field, value, ... (its
# status). Carries the pending counts over exactly like `carry_pending` above, in the
# same atomic step as the status (a concurrent RESERVE_LUA runs wholly before or after).
HEARTBEAT_LUA = """
local now, window, boot = tonumber(ARGV[3]), tonumber(ARGV[4]), ARGV[5]
local seated_total, rooms_total = tonumber(ARGV[6]), tonumber(ARGV[7])
local v = redis.call('HMGET', KEYS[1], 'pending', 'pending_rooms', 'pending_old',
                     'pending_rooms_old', 'pending_since', 'boot', 'seated_total', 'rooms_total')
local seats, rooms, old_seats, old_rooms, since = 0, 0, 0, 0, ARGV[3]
if boot ~= '' and boot == v[6] then
  local kept_seats, kept_rooms = tonumber(v[1]) or 0, tonumber(v[2]) or 0
  local kept_seated, kept_opened = tonumber(v[7]) or 0, tonumber(v[8]) or 0
  local seated = math.max(0, seated_total - kept_seated)
  local opened = math.max(0, rooms_total - kept_opened)
  seats, rooms = math.max(0, kept_seats - seated), math.max(0, kept_rooms - opened)
  old_seats = math.max(0, math.min(tonumber(v[3]) or 0, kept_seats) - seated)
  old_rooms = math.max(0, math.min(tonumber(v[4]) or 0, kept_rooms) - opened)
  since = v[5] or '0'
  if now - tonumber(since) >= window then
    seats, rooms = seats - old_seats, rooms - old_rooms
    old_seats, old_rooms, since = seats, rooms, ARGV[3]
  end
  seated_total, rooms_total = math.max(kept_seated, seated_total), math.max(kept_opened, rooms_total)
end
redis.call('HSET', KEYS[1], 'node_id', ARGV[2], 'pending', seats, 'pending_rooms', rooms,
           'pending_old', old_seats, 'pending_rooms_old', old_rooms, 'pending_since', since,
           'boot', boot, 'seated_total', seated_total, 'rooms_total', rooms_total,
           unpack(ARGV, 8))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
return 1
"""


class RedisNodeRegistry(NodeRegistry):
    """A hash per node (`<prefix>node:<id>`, expiring `KEY_TTL_FACTOR * timeout` after its
    last heartbeat), a set indexing them (`<prefix>nodes`), and `<prefix>nodes:since`, the
    time this Redis first saw a heartbeat.

    Liveness compares the stored `last_seen` with `now`, like the database registry. After
    Redis lost its data (a restart without persistence) the registry is empty: `dead`
    declares a node it has no entry for dead only once `timeout` has passed since
    `nodes:since`, which gives every live node a heartbeat to come back, so a Redis
    restart aborts no match.
    """

    KEY_TTL_FACTOR = 4

    def __init__(self, r: redis.Redis, prefix: str, timeout: float):
        super().__init__(timeout)
        self.r, self.prefix = r, prefix
        self.index = f"{prefix}nodes"
        self.since = f"{prefix}nodes:since"
        self._reserve = r.register_script(RESERVE_LUA)
        self._heartbeat = r.register_script(HEARTBEAT_LUA)

    def _key(self, node_id: str) -> str:
        return f"{self.prefix}node:{node_id}"

    def heartbeat(self, info: NodeInfo) -> None:
        fields = {**asdict(info), "draining": int(info.draining),
                  "modes": ",".join(info.modes),
                  "live": json.dumps(info.live, separators=(",", ":"))}
        for name in ("node_id", "pending", "pending_rooms", "boot", "seated_total", "rooms_total"):
            fields.pop(name)  # the script sets these
        args: list = [int(self.KEY_TTL_FACTOR * self.timeout * 1000), info.node_id,
                      repr(info.last_seen), pending_window(), info.boot, info.seated_total,
                      info.rooms_total]
        for k, v in fields.items():
            args += [k, v]
        self.r.set(self.since, info.last_seen, nx=True)
        self._heartbeat(keys=[self._key(info.node_id), self.index], args=args)
        upsert_row(info)  # the durable row (matches refer to it; the admin shows it)

    def alive(self, now: float) -> list[NodeInfo]:
        ids = sorted(self.r.smembers(self.index))
        with self.r.pipeline(transaction=False) as p:
            for node_id in ids:
                p.hgetall(self._key(node_id))
            rows = p.execute()
        out = []
        for h in rows:
            if not h or float(h["last_seen"]) < now - self.timeout:
                continue
            out.append(NodeInfo(
                h["node_id"], h["url"], int(h["capacity"]), int(h["max_rooms"]), int(h["rooms"]),
                int(h["players"]), h["draining"] == "1", float(h["last_seen"]),
                int(h["pending"]), int(h["pending_rooms"]),
                tuple(m for m in h.get("modes", "").split(",") if m),
                tuple(json.loads(h.get("live") or "[]"))))
        return out

    def reserve(self, groups: list[int], now: float,
                modes: list[str] | None = None) -> list[str | None]:
        if not groups:
            return []
        args: list = [f"{self.prefix}node:", now - self.timeout]
        for i, seats in enumerate(groups):
            args += [seats, modes[i] if modes else ""]
        out = self._reserve(keys=[self.index], args=args)
        return [c or None for c in out]

    def dead(self, candidates: list[str], now: float) -> list[str]:
        if not candidates:
            return []
        with self.r.pipeline(transaction=False) as p:
            p.get(self.since)
            for node_id in candidates:
                p.hget(self._key(node_id), "last_seen")
            since, *seen = p.execute()
        if since is None:  # Redis lost its data (or never saw a node): start the clock
            self.r.set(self.since, now, nx=True)
            since = now
        # Unknown here: dead only once the registry has existed for a whole timeout.
        registry_old = now - float(since) >= self.timeout
        return [c for c, last in zip(candidates, seen, strict=True)
                if (last is None and registry_old)
                or (last is not None and float(last) < now - self.timeout)]
