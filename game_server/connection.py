"""The seam between transports and rooms.

A transport (raw binary websocket, or one of SockJS's) wraps each client in a
`Connection`; the node's `ConnectionHandler` sees only this interface. A `Frame` is one
encoded server message: rendered at most once per transport representation (binary
websocket frame, base64 text, SockJS `a[...]` frame) and the same bytes written to every
connection that receives it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, Protocol


class Frame:
    """One msgpack message plus its per-transport renderings, computed once and shared."""

    __slots__ = ("payload", "_rendered")

    def __init__(self, payload: bytes):
        self.payload = payload
        self._rendered: dict[str, Any] = {}

    def rendered(self, key: str, render: Callable[[bytes], Any]) -> Any:
        """`render(payload)`, cached under `key` (one key per transport representation)."""
        try:
            return self._rendered[key]
        except KeyError:
            value = self._rendered[key] = render(self.payload)
            return value


class Connection(ABC):
    """One client connection, whatever its transport."""

    #: "websocket" (raw, binary) or the SockJS transport name ("sockjs-websocket",
    #: "xhr-streaming", "xhr-polling", "eventsource", "htmlfile", "jsonp").
    transport: str = ""
    #: The remote address, for logs.
    remote: str = ""
    #: Free slot for the node's per-connection state (seat, rate limiter, ...).
    state: Any = None

    @abstractmethod
    def send(self, frame: Frame) -> bool:
        """Queue or write one frame. False if the client's backlog is at the limit and the
        frame was not queued (the caller decides: drop a state frame, or close 4020)."""

    @abstractmethod
    def close(self, code: int, reason: str) -> None:
        """Close with a close code of docs/protocol.md; idempotent; never raises."""

    @property
    @abstractmethod
    def closed(self) -> bool: ...

    @abstractmethod
    def backlog(self) -> int:
        """Frames (or equivalent) queued but not yet delivered to the client."""


class ConnectionHandler(Protocol):
    """What a transport calls. `data` is `bytes` for a binary frame and `str` for a text
    message (SockJS, or a text frame on the raw websocket: base64 msgpack)."""

    def connection_made(self, conn: Connection) -> None: ...

    def message_received(self, conn: Connection, data: bytes | str) -> None: ...

    def connection_lost(self, conn: Connection) -> None: ...
