"""`NodeSettings`: everything a node is configured with, from the environment and the CLI.

Limits and their environment variables are those of docs/protocol.md ("Close codes and
limits"); secrets come from the environment only (dev defaults for `make run`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

DEV_SEAT_SECRET = "dev-seat-secret"
DEV_NODE_SECRET = "dev-node-secret"

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
    "time_scale": "ARENA_TIME_SCALE",
    "socket_send_buffer": "ARENA_SOCKET_SEND_BUFFER",
    "sockjs_disconnect_delay": "ARENA_SOCKJS_DISCONNECT_DELAY",
    "heartbeat_interval": "ARENA_HEARTBEAT_INTERVAL",
    "outbox_path": "ARENA_OUTBOX_PATH",
    "presence_interval": "ARENA_PRESENCE_INTERVAL",
    "redis_url": "REDIS_URL",
    "redis_prefix": "REDIS_PREFIX",
    "seat_secret": "SEAT_SECRET",
    "node_secret": "NODE_SECRET",
}


@dataclass
class NodeSettings:
    host: str = "127.0.0.1"
    port: int = 8001
    node_id: str = "node-1"
    public_url: str = ""            # default: http://host:port
    lobby_url: str = ""             # empty: no heartbeats, results stay in the outbox
    seat_secret: str = DEV_SEAT_SECRET
    node_secret: str = DEV_NODE_SECRET
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
    # other messages (ping, ...) per second per connection; burst 2x; beyond: 4004
    max_other_rate: int = 10
    # tuning and testing knobs
    time_scale: float = 1.0         # ticks run this many times faster than sim_hz (tests, bench)
    game_overrides: dict[str, Any] = field(default_factory=dict)  # each mode's config fields
    games: str = ""                 # game packages hosted (GAMES syntax); "" = engine.registry's
    # SO_SNDBUF of raw websockets (bytes; 0 = the system's autotuned buffer, up to MBs, in
    # which a client that stops reading hides for minutes). 64 KiB is seconds of patches
    # (~300 B deltas, ~1.2 KB keyframes at 20/s): then the backlog builds in the node,
    # where `max_send_queue` sees it.
    socket_send_buffer: int = 64 * 1024
    sockjs_disconnect_delay: float = 5.0
    sockjs_test_endpoints: bool = False
    heartbeat_interval: float = 5.0
    outbox_path: str = ""           # default var/outbox-<node_id>.sqlite3
    outbox_retry_min: float = 0.5   # seconds; doubles per failed attempt
    outbox_retry_max: float = 30.0
    shutdown_flush_timeout: float = 5.0
    # shared state (game_server/shared_state.py, docs/scale-out.md): in-process without
    # redis_url; with it, presence and events in Redis and used seat-token ids too
    redis_url: str = ""
    redis_prefix: str = "arena:"
    presence_interval: float = 2.0  # seconds between presence publications

    def __post_init__(self) -> None:
        if not self.public_url:
            self.public_url = f"http://{self.host}:{self.port}"
        if not self.outbox_path:
            self.outbox_path = os.path.join("var", f"outbox-{self.node_id}.sqlite3")
        for name in ("max_message_bytes", "max_input_rate", "max_send_queue", "max_rooms",
                     "max_players", "max_other_rate"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1")
        if self.socket_send_buffer < 0:
            raise ValueError("socket_send_buffer must be >= 0")
        if self.input_window < 2:
            raise ValueError("input_window must be >= 2 (the burst allowed at join)")
        for name in ("join_timeout", "reconnect_window", "empty_room_timeout", "time_scale",
                     "heartbeat_interval", "presence_interval"):
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
        return cls(**values)
