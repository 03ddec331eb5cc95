"""The Arena: a top-down shooter for 2 to 16 players, deterministic and pure.

Rules in docs/engine.md. All positions are ints in 1/10 world units (the wire's
quantization), so the state the simulation keeps is exactly the state it ships. Floats
appear only in geometry tests and direction vectors, always computed in the same order,
so a seed plus the input log reproduce a match bit for bit (engine/replay.py).
Declared to the hosts in games/arena/__init__.py.
"""

from __future__ import annotations

import functools
import math
from bisect import bisect_left, bisect_right
from dataclasses import dataclass, fields

from engine.clock import patch_every
from engine.game import Entities, Event, Game, GameFull, PlayerResult
from engine.rng import Rng
from games.arena.bots import BotBrain

Q = 10  # internal / wire units per world unit

KIND_PLAYER, KIND_PROJECTILE, KIND_PICKUP = 1, 2, 3
FLAG_ALIVE, FLAG_BOT, FLAG_CONNECTED = 1, 2, 4
EV_HIT, EV_KILL, EV_PICKUP, EV_RESPAWN = range(16, 20)   # game events (1..15: the room's)
BUTTON_FIRE = 1
PICKUP_SCORE, PICKUP_HEAL = 1, 2

AIM_MAX = 3142  # milliradians; aim is kept in [-AIM_MAX, AIM_MAX]
AIM_PERIOD = 6283  # 2*pi in milliradians, rounded
NAME_MAX = 24
PLAYER_ID_MAX = 999  # player ids are 1..999; projectiles and pickups use 1000..65535
OBJECT_ID_MIN, OBJECT_ID_MAX = 1000, 65535

Rect = tuple[int, int, int, int]  # x, y, w, h in world units

DEFAULT_WALLS: tuple[Rect, ...] = (
    (740, 440, 120, 120),   # centre block
    (300, 200, 240, 40), (1060, 200, 240, 40),   # upper bars
    (300, 760, 240, 40), (1060, 760, 240, 40),   # lower bars
    (200, 420, 40, 160), (1360, 420, 40, 160),   # side pillars
    (560, 460, 40, 80), (1000, 460, 40, 80),     # inner posts
)
DEFAULT_SPAWNS: tuple[tuple[int, int], ...] = (
    (80, 80), (1520, 80), (80, 920), (1520, 920), (800, 80), (800, 920),
    (80, 500), (1520, 500), (420, 500), (1180, 500), (420, 320), (1180, 680),
    (420, 680), (1180, 320), (620, 120), (980, 880),
)
DEFAULT_PICKUPS: tuple[tuple[int, int, int], ...] = (  # x, y, sort
    (800, 300, PICKUP_SCORE), (800, 700, PICKUP_SCORE),
    (480, 500, PICKUP_SCORE), (1120, 500, PICKUP_SCORE),
    (150, 150, PICKUP_HEAL), (1450, 850, PICKUP_HEAL),
    (1450, 150, PICKUP_HEAL), (150, 850, PICKUP_HEAL),
)


@dataclass(frozen=True)
class ArenaConfig:
    """Every tunable of a match. Distances in world units, durations in seconds."""

    mode: str = "arena"
    sim_hz: int = 40  # two ticks per patch: 20 patches per second
    patch_hz: int = 20
    width: int = 1600
    height: int = 1000
    walls: tuple[Rect, ...] = DEFAULT_WALLS
    spawns: tuple[tuple[int, int], ...] = DEFAULT_SPAWNS
    pickups: tuple[tuple[int, int, int], ...] = DEFAULT_PICKUPS
    max_players: int = 16
    player_radius: int = 16
    player_speed: int = 240          # world units per second
    max_hp: int = 100
    respawn_delay: float = 2.0
    projectile_speed: int = 700      # world units per second
    projectile_radius: int = 4
    projectile_lifetime: float = 1.0
    projectile_damage: int = 20
    fire_cooldown: float = 0.25
    pickup_radius: int = 14
    pickup_respawn: float = 8.0
    pickup_score: int = 1
    pickup_heal: int = 40
    kill_score: int = 2
    score_limit: int = 40
    time_limit: int = 180            # seconds
    max_queued_inputs: int = 8
    # Bot tuning: a bot re-plans every `bot_think_ticks` ticks (staggered across bots).
    bot_think_ticks: int = 3
    bot_aim_error: int = 90          # milliradians, uniform +-
    bot_fire_range: int = 600        # world units
    # What the node enforces; copied into welcome.config so clients can show them.
    reconnect_window: int = 20
    max_input_rate: int = 60

    def __post_init__(self) -> None:
        def need(ok: bool, what: str) -> None:
            if not ok:
                raise ValueError(f"ArenaConfig: {what}")

        # walls as tuples whatever sequences came in (JSON lists): the wall broad phase
        # (_wall_cells) is cached by them
        object.__setattr__(self, "walls", tuple(tuple(w) for w in self.walls))
        need(self.sim_hz > 0 and self.patch_hz > 0, "rates must be positive")
        need(2 <= self.max_players <= 16, "max_players must be in 2..16")
        need(self.width > 0 and self.height > 0 and self.width * Q < 65536
             and self.height * Q < 65536, "world must fit u16 after quantization")
        need(self.player_radius > 0 and self.projectile_radius >= 0, "radii")
        need(self.time_limit > 0 and self.score_limit > 0, "limits must be positive")
        need(self.max_queued_inputs >= 1, "max_queued_inputs >= 1")
        need(self.max_hp > 0 and self.projectile_damage > 0, "hp and damage")
        need(len(self.spawns) > 0, "at least one spawn point")
        step = self.player_speed * Q / self.sim_hz
        for x, y, w, h in self.walls:
            need(w > 0 and h > 0, f"wall {x, y, w, h} has no area")
            # thick enough that a player cannot cross a wall's middle in one tick
            need(min(w, h) * Q / 2 + self.player_radius * Q > step, f"wall {x, y, w, h} too thin")
        r = self.player_radius
        for sx, sy in self.spawns:
            need(r <= sx <= self.width - r and r <= sy <= self.height - r, "spawn off world")
            need(not any(_circle_hits_rect(sx * Q, sy * Q, r * Q, (wx * Q, wy * Q, ww * Q, wh * Q))
                         for wx, wy, ww, wh in self.walls), f"spawn {sx, sy} inside a wall")
        for _, _, sort in self.pickups:
            need(sort in (PICKUP_SCORE, PICKUP_HEAL), "pickup sort must be 1 or 2")

    def ticks(self, seconds: float) -> int:
        return max(1, round(seconds * self.sim_hz))

    def replace(self, **changes) -> ArenaConfig:
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return ArenaConfig(**values)


# --- geometry (ints in, bool/float out) ---------------------------------------------------

def _circle_hits_rect(cx: int, cy: int, r: int, rect: tuple[int, int, int, int]) -> bool:
    x, y, w, h = rect
    qx = x if cx < x else (x + w if cx > x + w else cx)
    qy = y if cy < y else (y + h if cy > y + h else cy)
    dx, dy = cx - qx, cy - qy
    return dx * dx + dy * dy < r * r


def segment_rect(ax: float, ay: float, dx: float, dy: float,
                 x0: int, y0: int, x1: int, y1: int) -> float:
    """Entry fraction in [0, 1] of the segment a + t*d into the box, or 2.0 if it misses."""
    t0, t1 = 0.0, 1.0
    if dx == 0:
        if ax < x0 or ax > x1:
            return 2.0
    else:
        inv = 1.0 / dx
        ta, tb = (x0 - ax) * inv, (x1 - ax) * inv
        if ta > tb:
            ta, tb = tb, ta
        if ta > t0:
            t0 = ta
        if tb < t1:
            t1 = tb
        if t0 > t1:
            return 2.0
    if dy == 0:
        if ay < y0 or ay > y1:
            return 2.0
    else:
        inv = 1.0 / dy
        ta, tb = (y0 - ay) * inv, (y1 - ay) * inv
        if ta > tb:
            ta, tb = tb, ta
        if ta > t0:
            t0 = ta
        if tb < t1:
            t1 = tb
        if t0 > t1:
            return 2.0
    return t0


CELL = 40   # 1/10 units: the side of a broad-phase cell
Cover = tuple[bytes, ...]


def _cover(width: int, height: int, boxes: list[tuple[int, int, int, int]]) -> Cover:
    """A broad phase over the world (0..width x 0..height), in columns of square cells:
    `cover[x // CELL][y // CELL]` is 0 only if no closed integer box (x0, y0, x1, y1) of
    `boxes` holds the point (x, y) of the world. Outside the world it says nothing: the
    callers test the bounds first."""
    nx, ny = width // CELL + 1, height // CELL + 1
    cols = [bytearray(ny) for _ in range(nx)]
    for x0, y0, x1, y1 in boxes:
        j0, j1 = max(0, y0 // CELL), min(ny - 1, y1 // CELL)
        if j0 <= j1:
            for i in range(max(0, x0 // CELL), min(nx - 1, x1 // CELL) + 1):
                cols[i][j0:j1 + 1] = b"\1" * (j1 - j0 + 1)
    return tuple(bytes(c) for c in cols)


@functools.lru_cache(maxsize=16)
def _wall_cells(walls: tuple[Rect, ...], radius: int, shot_radius: int, shot_step: int,
                width: int, height: int) -> tuple[Cover, Cover]:
    """The broad phases of a map (args in 1/10 units; `walls` in world units, as in the
    config), shared by every match of it and kept out of the game's state (its snapshot
    stays as it was):

    - where a player's centre may be pushed by a wall (`_move`: inside a wall grown by
      the radius, the same open test as its loop);
    - where a projectile's segment may start and still touch a wall box (`_move_shots`:
      inside a box of `shot_boxes` grown by the longest step, since |vx|, |vy| <=
      shot_step, so the segment's bounding box cannot reach a box from anywhere else).
    """
    r, pr, s = radius, shot_radius, shot_step
    rects = [(x * Q, y * Q, (x + w) * Q, (y + h) * Q) for x, y, w, h in walls]
    near_player = _cover(width, height, [(x0 - r + 1, y0 - r + 1, x1 + r - 1, y1 + r - 1)
                                         for x0, y0, x1, y1 in rects])
    near_shot = _cover(width, height, [(x0 - pr - s, y0 - pr - s, x1 + pr + s, y1 + pr + s)
                                       for x0, y0, x1, y1 in rects])
    return near_player, near_shot


def wrap_aim(aim: int) -> int:
    """Wrap milliradians into [-3142, 3142] (values already inside are kept)."""
    if -AIM_MAX <= aim <= AIM_MAX:
        return aim
    return (aim + AIM_MAX) % AIM_PERIOD - AIM_MAX


def clamp_move(mx: int, my: int) -> tuple[int, int]:
    """Clamp each axis to [-100, 100], then scale a vector longer than 100 down to 100."""
    mx = -100 if mx < -100 else (100 if mx > 100 else mx)
    my = -100 if my < -100 else (100 if my > 100 else my)
    n2 = mx * mx + my * my
    if n2 > 10000:
        n = math.isqrt(n2)
        mx = int(mx * 100 / n)
        my = int(my * 100 / n)
    return mx, my


MODES: dict[str, ArenaConfig] = {
    "arena": ArenaConfig(),
    "sprint": ArenaConfig(mode="sprint", time_limit=20, score_limit=8, respawn_delay=1.0),
    "duel": ArenaConfig(mode="duel", max_players=2, time_limit=120, score_limit=15),
}

# `python -m engine.bench`'s stress room: 16 bots firing about twice as often with
# longer-lived projectiles, and 12 pickups: about 64 entities on average.
BENCH_STRESS = MODES["arena"].replace(
    mode="stress", fire_cooldown=0.15, projectile_lifetime=1.2, score_limit=1_000_000,
    time_limit=3600, pickups=MODES["arena"].pickups + (
        (800, 150, 1), (800, 850, 1), (330, 500, 1), (1270, 500, 1)))


# --- state ---------------------------------------------------------------------------

class _Player:
    __slots__ = ("pid", "user_id", "name", "bot", "x", "y", "aim", "hp", "score", "kills",
                 "deaths", "alive", "connected", "ack", "mx", "my", "fire",
                 "pending", "pending_fire", "pending_n", "next_fire", "respawn_at", "brain",
                 "gone", "ent", "near")

    def __init__(self, pid: int, user_id: int, name: str, bot: bool) -> None:
        self.pid = pid
        self.user_id = user_id
        self.name = name
        self.bot = bot
        self.x = self.y = self.aim = 0
        self.hp = 0
        self.score = self.kills = self.deaths = 0
        self.alive = False
        self.connected = True
        self.ack = 0          # seq of the last applied input (stays 0 for bots)
        self.mx = self.my = 0
        self.fire = False
        # the queue, coalesced (see _queue): (seq, mx, my, aim, fire bit) of the last input
        self.pending: tuple[int, int, int, int, int] | None = None
        self.pending_fire = False
        self.pending_n = 0
        self.next_fire = 0    # first tick at which this player may fire again
        self.respawn_at = 0
        self.brain: BotBrain | None = None
        self.gone = False
        # entity() as last built; None once a field it shows changed (every such write in
        # this module clears it), so an idle player's tuple is not rebuilt every patch
        self.ent: tuple | None = None
        # the pick-up spots whose reach covers this player's cell (Arena._pick_cells),
        # set with every change of position
        self.near: list[int] | None = None

    def entity(self) -> tuple:
        flags = ((FLAG_ALIVE if self.alive else 0) | (FLAG_BOT if self.bot else 0)
                 | (FLAG_CONNECTED if self.connected else 0))
        return (KIND_PLAYER, self.x, self.y, self.aim, self.hp, self.score, self.kills,
                self.deaths, flags, self.ack, self.name)


def _player_order(target: tuple) -> int:
    return target[1]


class _Shot:
    __slots__ = ("eid", "x0", "y0", "vx", "vy", "born", "owner", "die_at")

    def __init__(self, eid: int, x0: int, y0: int, vx: int, vy: int, born: int, owner: int,
                 die_at: int) -> None:
        self.eid, self.x0, self.y0, self.vx, self.vy = eid, x0, y0, vx, vy
        self.born, self.owner, self.die_at = born, owner, die_at


class _Spot:
    """A pickup location: holds a pickup entity (eid > 0) or waits to respawn one."""

    __slots__ = ("x", "y", "sort", "eid", "respawn_at")

    def __init__(self, x: int, y: int, sort: int) -> None:
        self.x, self.y, self.sort = x, y, sort
        self.eid = 0
        self.respawn_at = 0


class Arena(Game):
    """One match of the Arena game. See engine/game.py for the Game API."""

    def __init__(self, config: ArenaConfig | None = None, seed: int = 0) -> None:
        c = self.config = config or ArenaConfig()
        self.seed = seed
        self.rng = Rng(seed)
        self.tick = 0
        self._events: list[Event] = []
        self._players: dict[int, _Player] = {}
        self._gone: list[_Player] = []   # players who left: kept for the results
        self._shots: list[_Shot] = []
        self._objects: Entities = {}     # projectile and pickup entities (immutable tuples)
        self._next_pid = 1
        self._next_oid = OBJECT_ID_MIN
        self._over = False
        self._end_reason = ""
        # derived constants, all ints in 1/10 units and ticks
        self.radius = c.player_radius * Q
        self.step_len = round(c.player_speed * Q / c.sim_hz)
        self.shot_speed = round(c.projectile_speed * Q / c.sim_hz)
        self.shot_life = c.ticks(c.projectile_lifetime)
        self.cooldown = c.ticks(c.fire_cooldown)
        self.respawn_ticks = c.ticks(c.respawn_delay)
        self.pickup_ticks = c.ticks(c.pickup_respawn)
        self.time_ticks = c.time_limit * c.sim_hz
        self.patch_every = patch_every(c.sim_hz, c.patch_hz)
        self.width, self.height = c.width * Q, c.height * Q
        self.walls: list[tuple[int, int, int, int]] = [
            (x * Q, y * Q, w * Q, h * Q) for x, y, w, h in c.walls]
        pr = c.projectile_radius * Q
        # walls grown by the projectile radius, as (x0, y0, x1, y1), for segment tests
        self.shot_boxes = [(x - pr, y - pr, x + w + pr, y + h + pr) for x, y, w, h in self.walls]
        self.sight_boxes = [(x, y, x + w, y + h) for x, y, w, h in self.walls]
        self.hit_r = self.radius + pr
        self.pick_r2 = (self.radius + c.pickup_radius * Q) ** 2
        self.spawn_points = [(x * Q, y * Q) for x, y in c.spawns]
        self._spots = [_Spot(x * Q, y * Q, s) for x, y, s in c.pickups]
        for spot in self._spots:
            self._spawn_pickup(spot)
        # Spatial index for `_pickups`: square cells of `_pick_cell` units; each spot is
        # listed in every cell its reach (a player centre closer than sqrt(pick_r2))
        # touches, so a player is tested only against the spots listed in its own cell.
        reach = self.radius + c.pickup_radius * Q
        size = self._pick_cell = max(1, 2 * reach)
        self._pick_cells: dict[tuple[int, int], list[int]] = {}
        for i, spot in enumerate(self._spots):
            for cx in range((spot.x - reach) // size, (spot.x + reach) // size + 1):
                for cy in range((spot.y - reach) // size, (spot.y + reach) // size + 1):
                    self._pick_cells.setdefault((cx, cy), []).append(i)
        self._respawn_due = 1 << 62   # the earliest respawn_at of an empty spot

    # --- players -------------------------------------------------------------------------

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        if self._over:
            raise GameFull("match is over")
        if len(self._players) >= self.config.max_players:
            raise GameFull(f"{self.config.max_players} players already")
        pid = self._next_pid
        if pid > PLAYER_ID_MAX:   # a very long match with many joins: reuse a free id
            used = set(self._players) | {p.pid for p in self._gone}
            pid = next((i for i in range(1, PLAYER_ID_MAX + 1) if i not in used),
                       min(i for i in range(1, PLAYER_ID_MAX + 1) if i not in self._players))
        else:
            self._next_pid += 1
        name = str(name)[:NAME_MAX]
        p = _Player(pid, 0 if bot else int(user_id), name, bot)
        if bot:
            p.brain = BotBrain(pid)
        self._players[pid] = p
        self._spawn(p)
        return pid

    def leave(self, player_id: int) -> None:
        p = self._players.pop(player_id, None)
        if p is None:
            return
        p.gone = True
        self._gone.append(p)

    def set_connected(self, player_id: int, connected: bool) -> None:
        p = self._players.get(player_id)
        if p is None:
            return
        p.connected = bool(connected)
        p.ent = None
        if not p.connected:   # stands still until it comes back
            p.mx = p.my = 0
            p.fire = False
            p.pending = None
            p.pending_fire = False
            p.pending_n = 0

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        """Queue `values` = (mx, my, aim, buttons); the room has clamped them to the input
        spec and checked `seq`. Ignored for unknown, bot, dead or disconnected players."""
        p = self._players.get(player_id)
        if p is None or p.bot or not p.alive or not p.connected or self._over:
            return False
        try:
            mx, my, aim, buttons = values
        except (TypeError, ValueError):
            return False
        return self._queue(p, seq, mx, my, aim, buttons)

    def _queue(self, p: _Player, seq: int, mx: int, my: int, aim: int, buttons: int) -> bool:
        """Add one input to the player's queue.

        The queue is stored coalesced: the last input (movement, aim, seq) plus the OR of
        every fire bit. That is exactly what applying a queue of up to `max_queued_inputs`
        with drop-oldest-but-keep-fire gives, without keeping the list.
        """
        mx, my = clamp_move(mx, my)
        fire = buttons & BUTTON_FIRE
        p.pending = (seq, mx, my, wrap_aim(aim), fire)
        if fire:
            p.pending_fire = True
        if p.pending_n < self.config.max_queued_inputs:
            p.pending_n += 1
        return True

    def queued(self, player_id: int) -> int:
        """How many inputs wait for the next tick (at most `max_queued_inputs`)."""
        p = self._players.get(player_id)
        return p.pending_n if p else 0

    # --- the tick ------------------------------------------------------------------------

    def step(self) -> None:
        if self._over:
            return
        self.tick = t = self.tick + 1
        players = list(self._players.values())
        for p in players:
            if not p.alive and p.respawn_at <= t:
                self._spawn(p)
                self._events.append([EV_RESPAWN, p.pid])
        think = self.config.bot_think_ticks
        near_wall, near_box = self._covers()
        for p in players:
            if p.brain is not None and p.alive and (t + p.pid) % think == 0:
                self._queue(p, 0, *p.brain.think(self, p))
            click = False
            if p.pending is not None:
                seq, p.mx, p.my, p.aim, fire = p.pending
                p.ent = None
                p.fire = fire == 1            # held from now on, until an input says not
                click = p.pending_fire        # any fire bit since the last tick
                if not p.bot:
                    p.ack = seq
                p.pending = None
                p.pending_fire = False
                p.pending_n = 0
            if p.alive and p.connected:
                if p.mx or p.my:
                    self._move(p, near_wall)
                if (p.fire or click) and p.next_fire <= t:
                    self._fire(p, t)
        self._move_shots(t, near_box)
        self._pickups(players, t)
        self._check_end(t)

    def _covers(self) -> tuple[Cover, Cover]:
        """This map's broad phases (`_wall_cells`): near a wall, near a shot box."""
        c = self.config
        return _wall_cells(c.walls, self.radius, c.projectile_radius * Q, self.shot_speed,
                           self.width, self.height)

    def _move(self, p: _Player, near_wall: Cover | None = None) -> None:
        """Step `p` by its input, then push it out of the walls it overlaps, in wall order.
        A pass starting where `near_wall` rules out every wall would change nothing: it is
        skipped, like the rest of the passes (a push may leave the world until the
        final clamp: there the cover says nothing)."""
        if near_wall is None:
            near_wall = self._covers()[0]
        s = self.step_len
        x = p.x + int(p.mx * s / 100)
        y = p.y + int(p.my * s / 100)
        r = self.radius
        w, h = self.width, self.height
        # world bounds
        x = r if x < r else (w - r if x > w - r else x)
        y = r if y < r else (h - r if y > h - r else y)
        r2 = r * r
        for _ in (1, 2):   # two passes settle corners where two walls meet
            if 0 <= x <= w and 0 <= y <= h and not near_wall[x // CELL][y // CELL]:
                break
            moved = False
            for wx, wy, ww, wh in self.walls:
                if x + r <= wx or x - r >= wx + ww or y + r <= wy or y - r >= wy + wh:
                    continue
                qx = wx if x < wx else (wx + ww if x > wx + ww else x)
                qy = wy if y < wy else (wy + wh if y > wy + wh else y)
                dx, dy = x - qx, y - qy
                d2 = dx * dx + dy * dy
                if d2 >= r2:
                    continue
                moved = True
                if d2 == 0:   # centre on or inside the rectangle: leave by the nearest side
                    left, right, up, down = x - wx, wx + ww - x, y - wy, wy + wh - y
                    m = min(left, right, up, down)
                    if m == left:
                        x = wx - r
                    elif m == right:
                        x = wx + ww + r
                    elif m == up:
                        y = wy - r
                    else:
                        y = wy + wh + r
                else:         # push out along the normal, rounding away from the wall
                    d = math.sqrt(d2)
                    x = qx + math.ceil(dx * r / d) if dx > 0 else qx + math.floor(dx * r / d)
                    y = qy + math.ceil(dy * r / d) if dy > 0 else qy + math.floor(dy * r / d)
            if not moved:
                break
        p.x = x = r if x < r else (w - r if x > w - r else x)
        p.y = y = r if y < r else (h - r if y > h - r else y)
        p.ent = None
        size = self._pick_cell
        p.near = self._pick_cells.get((x // size, y // size))

    def _fire(self, p: _Player, t: int) -> None:
        p.next_fire = t + self.cooldown
        a = p.aim / 1000
        vx = round(math.cos(a) * self.shot_speed)
        vy = round(math.sin(a) * self.shot_speed)
        eid = self._new_oid()
        shot = _Shot(eid, p.x, p.y, vx, vy, t, p.pid, t + self.shot_life)
        self._shots.append(shot)
        self._objects[eid] = (KIND_PROJECTILE, p.x, p.y, vx, vy, t, p.pid)

    def _move_shots(self, t: int, near_box: Cover) -> None:
        """Each shot's segment of this tick against the walls, then the living players (as
        they were when the first shot moved), in player order: the first contact along it
        wins. The walls are tested only when `near_box` says the segment may reach one,
        the players only in the segment's x range (found by bisection: a hit moves nobody,
        so one sort by x serves the whole tick)."""
        if not self._shots:
            return
        keep: list[_Shot] = []
        boxes = self.shot_boxes
        targets = [(p.x, i, p.y, p.pid, p) for i, p in enumerate(self._players.values())
                   if p.alive]
        targets.sort()
        xs = [e[0] for e in targets]
        n_targets = len(xs)
        hr = self.hit_r
        hr2 = hr * hr
        w, h = self.width, self.height
        for s in self._shots:
            n = t - s.born
            vx, vy = s.vx, s.vy
            ax = s.x0 + vx * (n - 1)
            ay = s.y0 + vy * (n - 1)
            bx, by = ax + vx, ay + vy
            best = 1.5   # fraction of the segment at the first contact (> 1: none)
            lx, hx = (ax, bx) if ax < bx else (bx, ax)
            ly, hy = (ay, by) if ay < by else (by, ay)
            if not (0 <= ax <= w and 0 <= ay <= h) or near_box[ax // CELL][ay // CELL]:
                for x0, y0, x1, y1 in boxes:
                    if hx < x0 or lx > x1 or hy < y0 or ly > y1:
                        continue
                    f = segment_rect(ax, ay, vx, vy, x0, y0, x1, y1)
                    if f < best:
                        best = f
            victim = None
            lx -= hr
            hx += hr
            ly -= hr
            hy += hr
            owner = s.owner
            lo = bisect_left(xs, lx)
            if lo < n_targets and xs[lo] <= hx:   # someone in the x range
                hi = bisect_right(xs, hx, lo)
                near = targets[lo:hi]
                if hi - lo > 1:
                    near.sort(key=_player_order)
                for px, _, py, pid, p in near:
                    if py < ly or py > hy or pid == owner:
                        continue
                    # closest approach of the segment to the player's centre
                    f = ((px - ax) * vx + (py - ay) * vy) / (vx * vx + vy * vy or 1)
                    f = 0.0 if f < 0 else (1.0 if f > 1 else f)
                    cx, cy = ax + vx * f - px, ay + vy * f - py
                    if cx * cx + cy * cy <= hr2 and f < best:
                        best, victim = f, p
            if victim is not None:
                self._hit(victim, owner, t)
            elif best > 1 and t < s.die_at and 0 <= bx <= w and 0 <= by <= h:
                keep.append(s)
                continue
            del self._objects[s.eid]
        self._shots = keep

    def _hit(self, p: _Player, attacker: int, t: int) -> None:
        dmg = min(self.config.projectile_damage, p.hp)
        p.hp -= dmg
        p.ent = None
        self._events.append([EV_HIT, p.pid, attacker, dmg])
        if p.hp > 0:
            return
        p.alive = False
        p.deaths += 1
        p.mx = p.my = 0
        p.fire = False
        p.pending = None
        p.pending_fire = False
        p.pending_n = 0
        p.respawn_at = t + self.respawn_ticks
        self._events.append([EV_KILL, p.pid, attacker])
        killer = self._players.get(attacker)
        if killer is not None:
            killer.kills += 1
            killer.score += self.config.kill_score
            killer.ent = None

    def _pickups(self, players: list[_Player], t: int) -> None:
        """Spot by spot: respawn a due pickup, or give it to the first living player (in
        `players` order) in reach. The same rules as testing every spot against every
        player, but the players near a spot are found through `_pick_cells` first, and
        nothing is done when no spot is due and no living player is near one."""
        near: dict[int, list[_Player]] | None = None
        for p in players:
            if p.alive:
                spots = p.near
                if spots is not None:
                    for i in spots:
                        if near is None:
                            near = {}
                        found = near.get(i)
                        if found is None:
                            near[i] = [p]
                        else:
                            found.append(p)
        if near is None and self._respawn_due > t:
            return
        r2 = self.pick_r2
        c = self.config
        due = 1 << 62
        for i, spot in enumerate(self._spots):
            if spot.eid == 0:
                if spot.respawn_at <= t:
                    self._spawn_pickup(spot)
                elif spot.respawn_at < due:
                    due = spot.respawn_at
                continue
            if near is None or i not in near:
                continue
            for p in near[i]:
                dx, dy = p.x - spot.x, p.y - spot.y
                if dx * dx + dy * dy >= r2:
                    continue
                if spot.sort == PICKUP_HEAL:
                    if p.hp >= c.max_hp:
                        continue
                    p.hp = min(c.max_hp, p.hp + c.pickup_heal)
                else:
                    p.score += c.pickup_score
                p.ent = None
                self._events.append([EV_PICKUP, p.pid, spot.sort])
                del self._objects[spot.eid]
                spot.eid = 0
                spot.respawn_at = t + self.pickup_ticks
                if spot.respawn_at < due:
                    due = spot.respawn_at
                break
        self._respawn_due = due

    def _spawn_pickup(self, spot: _Spot) -> None:
        spot.eid = self._new_oid()
        self._objects[spot.eid] = (KIND_PICKUP, spot.x, spot.y, spot.sort)

    def _spawn(self, p: _Player) -> None:
        """Place `p` at a spawn point far from the living: by lot among the (at most three)
        points farthest from anyone alive, keeping only those at least half as far as the
        best one."""
        others = [(o.x, o.y) for o in self._players.values() if o.alive and o is not p]
        ranked = []
        for i, (sx, sy) in enumerate(self.spawn_points):
            near = 1 << 62   # the squared distance to the nearest of the others
            for ox, oy in others:
                dx, dy = sx - ox, sy - oy
                d2 = dx * dx + dy * dy
                if d2 < near:
                    near = d2
            ranked.append((-near, i))
        ranked.sort()
        best = -ranked[0][0]
        good = [i for near, i in ranked[:3] if -near * 4 >= best]   # squared: half as far
        pick = good[self.rng.below(len(good))]
        p.x, p.y = self.spawn_points[pick]
        size = self._pick_cell
        p.near = self._pick_cells.get((p.x // size, p.y // size))
        p.alive = True
        p.hp = self.config.max_hp
        p.mx = p.my = 0
        p.fire = False
        p.ent = None

    def _new_oid(self) -> int:
        oid = self._next_oid
        while oid in self._objects:
            oid = oid + 1 if oid < OBJECT_ID_MAX else OBJECT_ID_MIN
        self._next_oid = oid + 1 if oid < OBJECT_ID_MAX else OBJECT_ID_MIN
        return oid

    def _check_end(self, t: int) -> None:
        limit = self.config.score_limit
        for p in self._players.values():
            if p.score >= limit:
                self._end("score")
                return
        if t >= self.time_ticks:
            self._end("time")

    def _end(self, reason: str) -> None:
        self._over = True
        self._end_reason = reason

    # --- queries used by bots ----------------------------------------------------------------

    def line_clear(self, ax: int, ay: int, bx: int, by: int) -> bool:
        """True if no wall cuts the segment a-b (line of sight)."""
        dx, dy = bx - ax, by - ay
        lx, hx = (ax, bx) if ax < bx else (bx, ax)
        ly, hy = (ay, by) if ay < by else (by, ay)
        for x0, y0, x1, y1 in self.sight_boxes:
            if hx < x0 or lx > x1 or hy < y0 or ly > y1:
                continue
            if segment_rect(ax, ay, dx, dy, x0, y0, x1, y1) <= 1:
                return False
        return True

    def players_view(self) -> list[_Player]:
        return list(self._players.values())

    def pickups_view(self) -> list[_Spot]:
        return [s for s in self._spots if s.eid]

    # --- output --------------------------------------------------------------------------

    def entities(self) -> Entities:
        out = {}
        for pid, p in self._players.items():
            e = p.ent
            if e is None:
                e = p.ent = p.entity()
            out[pid] = e
        out.update(self._objects)
        return out

    def drain_events(self) -> list[Event]:
        ev, self._events = self._events, []
        return ev

    @property
    def clock(self) -> int:
        return max(0, self.time_ticks - self.tick)

    @property
    def over(self) -> bool:
        return self._over

    @property
    def end_reason(self) -> str:
        return self._end_reason

    def results(self) -> list[PlayerResult]:
        """Everyone who played, leavers included (with the score they had), by placement.

        Placement is by score; equal scores share a placement ("1, 2, 2, 4"). Within a tie
        rows are ordered by kills, then fewer deaths, then player id. Stats: (kills, deaths).
        """
        everyone = list(self._players.values()) + self._gone
        everyone.sort(key=lambda p: (-p.score, -p.kills, p.deaths, p.pid))
        rows: list[PlayerResult] = []
        place = 0
        for i, p in enumerate(everyone):
            if i == 0 or p.score != everyone[i - 1].score:
                place = i + 1
            rows.append(PlayerResult(p.pid, p.user_id, p.name, p.score, place, p.bot,
                                     (p.kills, p.deaths)))
        return rows

    def client_config(self) -> dict:
        c = self.config
        return {
            "sim_hz": c.sim_hz, "patch_hz": c.patch_hz, "width": c.width, "height": c.height,
            "walls": [list(w) for w in c.walls], "player_radius": c.player_radius,
            "player_speed": c.player_speed, "projectile_radius": c.projectile_radius,
            "projectile_speed": c.projectile_speed, "pickup_radius": c.pickup_radius,
            "max_hp": c.max_hp, "time_limit": c.time_limit, "score_limit": c.score_limit,
            "mode": c.mode, "reconnect_window": c.reconnect_window,
            "max_input_rate": c.max_input_rate, "max_players": c.max_players,
            "respawn_ticks": self.respawn_ticks, "fire_cooldown_ticks": self.cooldown,
            "projectile_lifetime_ticks": self.shot_life, "player_step": self.step_len,
            "projectile_step": self.shot_speed, "kill_score": c.kill_score,
            "pickup_score": c.pickup_score, "pickup_heal": c.pickup_heal,
        }


__all__ = ["MODES", "Arena", "ArenaConfig", "GameFull", "clamp_move", "wrap_aim"]
