"""`NodeSettings`: everything a node is configured with, from the environment and the CLI.

Limits and their environment variables are those of docs/protocol.md ("Close codes and
limits"); secrets come from the environment only (dev defaults for `make run`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from engine.auth import derive_node_key

DEV_SEAT_SECRET = "dev-seat-secret"
DEV_NODE_SECRET = "dev-node-secret"
EVENT_LOOPS = ("uvloop", "asyncio")
MIN_SECRET_LENGTH = 16  # characters, for SEAT_SECRET and NODE_KEY outside development mode

# setting name -> environment variable
ENV = {
    "max_message_bytes": "ARENA_MAX_MESSAGE_BYTES",
    "max_input_rate": "ARENA_MAX_INPUT_RATE",
    "input_window": "ARENA_INPUT_WINDOW",
    "max_send_queue": "ARENA_MAX_SEND_QUEUE",
    "join_timeout": "ARENA_JOIN_TIMEOUT",
    "reconnect_window": "ARENA_RECONNECT_WINDOW",
    "empty_room_timeout": "ARENA_EMPTY_ROOM_TIMEOUT",
    "max_rooms": "ARENA_MAX_ROOMS",
    "max_players": "ARENA_MAX_PLAYERS",
    "cpu_budget": "ARENA_CPU_BUDGET",
    "time_scale": "ARENA_TIME_SCALE",
    "socket_send_buffer": "ARENA_SOCKET_SEND_BUFFER",
    "event_loop": "ARENA_EVENT_LOOP",
    "sockjs_disconnect_delay": "ARENA_SOCKJS_DISCONNECT_DELAY",
    "heartbeat_interval": "ARENA_HEARTBEAT_INTERVAL",
    "outbox_path": "ARENA_OUTBOX_PATH",
    "presence_interval": "ARENA_PRESENCE_INTERVAL",
    "drain_grace": "ARENA_DRAIN_GRACE",
    "handoff": "ARENA_HANDOFF",
    "handoff_timeout": "ARENA_HANDOFF_TIMEOUT",
    "redis_url": "REDIS_URL",
    "redis_prefix": "REDIS_PREFIX",
    "seat_secret": "SEAT_SECRET",
    # per-address admission (game_server/admission.py, docs/protocol.md)
    "listen_backlog": "ARENA_LISTEN_BACKLOG",
    "http_idle_timeout": "ARENA_HTTP_IDLE_TIMEOUT",
    "max_connections_per_address": "ARENA_MAX_CONNECTIONS_PER_ADDRESS",
    "max_unjoined_per_address": "ARENA_MAX_UNJOINED_PER_ADDRESS",
    "unjoined_rate": "ARENA_UNJOINED_RATE",
    "first_message_timeout": "ARENA_FIRST_MESSAGE_TIMEOUT",
    "admission_exempt": "ARENA_ADMISSION_EXEMPT",
    "sockjs_max_sessions": "ARENA_SOCKJS_MAX_SESSIONS",
    "sockjs_max_sessions_per_address": "ARENA_SOCKJS_MAX_SESSIONS_PER_ADDRESS",
    "sockjs_session_reserve": "ARENA_SOCKJS_SESSION_RESERVE",
    "sockjs_min_session_id": "ARENA_SOCKJS_MIN_SESSION_ID",
}
# NODE_KEY (this node's own request key) or NODE_SECRET (the master, development mode
# only): see `node_key_from_env`.


@dataclass
class NodeSettings:
    host: str = "127.0.0.1"
    port: int = 8001
    node_id: str = "node-1"
    public_url: str = ""            # default: http://host:port
    lobby_url: str = ""             # empty: no heartbeats, results stay in the outbox
    seat_secret: str = DEV_SEAT_SECRET
    node_secret: str = ""  # the key this node signs with; "": derived from DEV_NODE_SECRET
    # limits (docs/protocol.md)
    max_message_bytes: int = 1024
    max_input_rate: int = 60        # inputs per second per player, judged over input_window
    # Inputs are judged over this many seconds: a quiet client earns credit up to
    # max_input_rate * input_window (at join: 2 s of it), so honest inputs that the network
    # held back and delivered at once are not a flood; a sustained excess still is (4004).
    input_window: float = 10.0
    max_send_queue: int = 32        # state frames; then latest wins, then close 4020
    join_timeout: float = 10.0
    reconnect_window: float = 20.0
    empty_room_timeout: float = 30.0
    max_rooms: int = 200
    max_players: int = 4000
    # measured headroom (game_server/capacity.py): the share of one core the node may use;
    # near it new rooms are refused (4014) and heartbeats report no room for more players
    cpu_budget: float = 0.8
    capacity_window: float = 5.0    # seconds the load is smoothed over
    capacity_interval: float = 1.0  # seconds between two samples
    # other messages (ping, ...) per second per connection; burst 2x; beyond: 4004
    max_other_rate: int = 10
    # tuning and testing knobs
    time_scale: float = 1.0         # ticks run this many times faster than sim_hz (tests, bench)
    game_overrides: dict[str, Any] = field(default_factory=dict)  # each mode's config fields
    games: str = ""                 # game packages hosted (GAMES syntax); "" = engine.registry's
    # per-address admission (game_server/admission.py): one address cannot starve others
    listen_backlog: int = 1024              # listen(2) backlog (the kernel caps it at somaxconn)
    http_idle_timeout: float = 5.0          # no complete request header within it: closed
    max_connections_per_address: int = 256  # open TCP connections; beyond: reset at accept
    max_unjoined_per_address: int = 32     # game connections not yet seated; beyond: 429
    # per-address budget of unjoined traffic: new game connections, and every frame (data
    # or control) or xhr_send of a connection not yet seated; burst 4x; beyond: 429 / 4004
    unjoined_rate: float = 40.0
    first_message_timeout: float = 5.0      # a game connection that sends nothing: 4005
    admission_exempt: str = ""              # addresses (comma separated) the caps skip
    sockjs_max_sessions: int = 10_000       # live SockJS sessions on /play; beyond: 503
    sockjs_max_sessions_per_address: int = 32  # beyond: 429
    # the last sessions below sockjs_max_sessions go only to an address with no unjoined one
    sockjs_session_reserve: int = 1000
    sockjs_min_session_id: int = 22         # characters (128 bits of base64url); shorter: 400
    # SO_SNDBUF of raw websockets (bytes; 0 = the system's autotuned buffer, up to MBs, in
    # which a client that stops reading hides for minutes). 64 KiB is seconds of patches
    # (~300 B deltas, ~1.2 KB keyframes at 20/s): then the backlog builds in the node,
    # where `max_send_queue` sees it.
    socket_send_buffer: int = 64 * 1024
    # the event loop of `python -m game_server` (EVENT_LOOPS). uvloop: no cheaper with
    # 1,000 playing players (the kernel's share dominates), ~15% per input with 300, and
    # libuv handles accept errors itself (not counted); docs/performance.md
    event_loop: str = "asyncio"
    sockjs_disconnect_delay: float = 5.0
    sockjs_test_endpoints: bool = False
    heartbeat_interval: float = 5.0
    outbox_path: str = ""           # default var/outbox-<node_id>.sqlite3
    outbox_retry_min: float = 0.5   # seconds; doubles per failed attempt
    outbox_retry_max: float = 30.0
    shutdown_flush_timeout: float = 5.0
    # drain (game_server/drain.py, handoff.py): rooms ending within the grace finish here,
    # the others move to another node; past it, what is left is aborted (4030)
    drain_grace: float = 10.0
    handoff: int = 1                # 0: no handoff, the grace then the abort
    handoff_timeout: float = 5.0    # seconds for one lobby or node-to-node handoff request
    # shared state (game_server/shared_state.py, docs/scale-out.md): in-process without
    # redis_url; with it, presence and events in Redis and used seat-token ids too
    redis_url: str = ""
    redis_prefix: str = "arena:"
    shutdown_close_timeout: float = 1.0  # for the 4030 close frames to reach polling clients
    presence_interval: float = 2.0  # seconds between presence publications

    def __post_init__(self) -> None:
        if not self.node_secret:  # the development key, derived as the lobby derives it
            self.node_secret = derive_node_key(DEV_NODE_SECRET, self.node_id)
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        if not self.outbox_path:
            self.outbox_path = os.path.join("var", f"outbox-{self.node_id}.sqlite3")
        for name in ("max_message_bytes", "max_input_rate", "max_send_queue", "max_rooms",
                     "max_players", "max_other_rate", "listen_backlog",
                     "max_connections_per_address", "max_unjoined_per_address",
                     "sockjs_max_sessions", "sockjs_max_sessions_per_address"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.event_loop not in EVENT_LOOPS:
            raise ValueError(f"event_loop must be one of {', '.join(EVENT_LOOPS)}")
        if self.socket_send_buffer < 0:
            raise ValueError("socket_send_buffer must be >= 0")
        if self.input_window < 2:
            raise ValueError("input_window must be >= 2 (the burst allowed at join)")
        if not 0 <= self.sockjs_session_reserve < self.sockjs_max_sessions:
            raise ValueError("sockjs_session_reserve must be in [0, sockjs_max_sessions)")
        if self.drain_grace < 0:
            raise ValueError("drain_grace must be >= 0")
        for name in ("cpu_budget", "capacity_window", "capacity_interval"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("join_timeout", "reconnect_window", "empty_room_timeout", "time_scale",
                     "handoff_timeout",
                     "heartbeat_interval", "presence_interval", "http_idle_timeout",
                     "unjoined_rate", "first_message_timeout"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> NodeSettings:
        """Settings from environment variables (`ENV`), then explicit overrides (the CLI)."""
        env = os.environ if env is None else env
        types = {f.name: f.type for f in fields(cls)}
        values: dict[str, Any] = {}
        for name, var in ENV.items():
            raw = env.get(var)
            if raw is None or raw == "":
                continue
            kind = types[name]
            try:
                values[name] = int(raw) if kind == "int" else float(raw) if kind == "float" else raw
            except ValueError:
                raise ValueError(f"{var}={raw!r} is not a valid {kind}") from None
        values.update({k: v for k, v in overrides.items() if v is not None})
        if "node_secret" not in values:
            values["node_secret"] = node_key_from_env(env, values.get("node_id", cls.node_id))
        return cls(**values)


# --- secrets: development mode, per-node keys ---------------------------------------

def is_dev(env: Mapping[str, str]) -> bool:
    """Development mode is explicit: `ARENA_ENV=dev` (make run, run.py, the tests)."""
    return env.get("ARENA_ENV", "") == "dev"


def node_key_from_env(env: Mapping[str, str], node_id: str) -> str:
    """This node's request key: `NODE_KEY`, else derived from the master `NODE_SECRET`
    (or the development master) and the node id, as the lobby derives it."""
    return env.get("NODE_KEY") or derive_node_key(env.get("NODE_SECRET") or DEV_NODE_SECRET,
                                                  node_id)


def secret_problems(env: Mapping[str, str], node_id: str) -> list[str]:
    """Why this node must not start outside development mode (empty: it may)."""
    if is_dev(env):
        return []
    problems = []
    seat = env.get("SEAT_SECRET", "")
    if not seat or seat == DEV_SEAT_SECRET:
        problems.append("SEAT_SECRET is unset or the development value")
    elif len(seat) < MIN_SECRET_LENGTH:
        problems.append(f"SEAT_SECRET is shorter than {MIN_SECRET_LENGTH} characters")
    if env.get("NODE_SECRET"):
        problems.append("NODE_SECRET (the lobby's master key) is set: a node holds only its "
                        "own NODE_KEY")
    key = env.get("NODE_KEY", "")
    if not key:
        problems.append("NODE_KEY is unset")
    elif key == derive_node_key(DEV_NODE_SECRET, node_id):
        problems.append("NODE_KEY is derived from the development NODE_SECRET")
    elif len(key) < MIN_SECRET_LENGTH:
        problems.append(f"NODE_KEY is shorter than {MIN_SECRET_LENGTH} characters")
    return problems


def require_secrets(env: Mapping[str, str], node_id: str) -> None:
    """Raise ValueError, with every reason and the fix, unless the secrets may be used."""
    problems = secret_problems(env, node_id)
    if problems:
        raise ValueError(
            "refusing to start outside development mode (ARENA_ENV=dev): "
            + "; ".join(problems) + f". Set SEAT_SECRET as on the lobby and NODE_KEY to "
            f"`manage.py node_key {node_id}` run on the lobby (docs/deploy.md, \"Secrets\").")
