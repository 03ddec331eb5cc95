"""Seated raw-websocket players read once per tick instant instead of on readiness.

A seated player sends about one message per tick (its input), which the room consumes only
at its next step. Read on readiness, each message costs the node a turn of the event loop
(an `epoll_wait`, the selector's bookkeeping, a callback) besides its `recv`; read here,
the `TickGrid` asks one `epoll_wait` for every seated socket that has data, right before
the rooms of the instant step, and each ready transport reads once (`recv` of at most
`READ_CHUNK` bytes, through asyncio's own read path and aiohttp's parser, as on
readiness). What a client sends waits in its socket until the next tick instant, at most
one step (`1 / sim_hz`): an input is consumed by that step either way; a `ping`'s `pong`
comes up to one step later. A flood costs the node one bounded read per client per tick.

The connection leaves the tick reads (back to readiness) when it is detached from its seat
or the node closes it, so the close handshake and everything after a seat are read as
before. Only asyncio's own socket transports can be read this way (`supported`): TLS,
uvloop's, and SockJS connections stay on readiness. aiohttp's own read pauses (its flow
control) are kept: a transport aiohttp paused is not read until aiohttp resumes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import select
from asyncio.selector_events import _SelectorSocketTransport  # type: ignore[attr-defined]

log = logging.getLogger(__name__)


def supported(tr: asyncio.BaseTransport) -> bool:
    """Whether `tr` can be read by `TickReads`: a plain asyncio selector socket transport
    whose protocol keeps aiohttp's read-pause flags (docs/game_server.md)."""
    proto = tr.get_protocol()
    return (type(tr) is _SelectorSocketTransport and hasattr(tr, "_read_ready")
            and hasattr(proto, "_reading_paused") and hasattr(proto, "_buffer_paused"))


class TickReads:
    """The node's tick-read sockets: an epoll set of their fds, read by `read()`."""

    def __init__(self) -> None:
        self._epoll = select.epoll()
        self._transports: dict[int, asyncio.Transport] = {}

    def __len__(self) -> int:
        return len(self._transports)

    def add(self, tr: asyncio.Transport) -> int:
        """Read `tr` at tick instants from now on (it must be `supported`); its fd, or -1
        if it is closing."""
        if tr.is_closing():
            return -1
        fd = tr.get_extra_info("socket").fileno()
        tr.pause_reading()   # out of the event loop's selector
        self._epoll.register(fd, select.EPOLLIN)
        self._transports[fd] = tr
        return fd

    def remove(self, tr: asyncio.Transport, fd: int) -> None:
        """Back to readiness: out of the set, reading resumed unless aiohttp holds it paused
        or it is closing. `fd` is what `add` returned (a closed socket's number may be
        another socket's by now: only `tr`'s own entry is removed)."""
        if self._transports.get(fd) is not tr:
            return
        self._forget(fd, tr)
        proto = tr.get_protocol()
        if not (tr.is_closing() or proto._reading_paused or proto._buffer_paused):
            tr.resume_reading()

    def read(self) -> None:
        """One read on every tick-read transport that has data (or EOF, or an error)."""
        if not self._transports:
            return
        transports = self._transports
        # (without maxevents, Python's epoll returns at most FD_SETSIZE - 1 = 1023 fds)
        for fd, _ in self._epoll.poll(0, len(transports)):
            tr = transports.get(fd)
            if tr is None:
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(fd)
                continue
            if tr.is_closing():
                self._forget(fd, tr)
                continue
            proto = tr.get_protocol()
            if proto._reading_paused or proto._buffer_paused:
                continue   # aiohttp's flow control: read when aiohttp resumes it
            if tr.is_reading():   # aiohttp resumed it after a pause of its own: take it back
                tr.pause_reading()
            tr._read_ready()  # type: ignore[attr-defined]  # asyncio's read: recv, data_received, EOF
            if tr.is_closing():
                self._forget(fd, tr)

    def _forget(self, fd: int, tr: asyncio.Transport) -> None:
        if self._transports.get(fd) is tr:   # (not removed meanwhile by what it read)
            del self._transports[fd]
            with contextlib.suppress(OSError, ValueError):
                self._epoll.unregister(fd)

    def close(self) -> None:
        self._transports.clear()
        self._epoll.close()
