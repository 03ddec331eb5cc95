"""`lobby.live.GunicornServer` holds its port from the start: no other process can take it
between choosing it and gunicorn listening, so the readiness check talks to our child."""

from __future__ import annotations

import errno
import socket

import pytest

from lobby.live import GunicornServer


def test_the_port_is_held_before_gunicorn_starts() -> None:
    server = GunicornServer(workers=1)
    try:
        with socket.socket() as intruder, pytest.raises(OSError) as err:
            intruder.bind(("127.0.0.1", server.port))
        assert err.value.errno == errno.EADDRINUSE
    finally:
        server.stop()
