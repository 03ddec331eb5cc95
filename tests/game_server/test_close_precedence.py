"""A message wrong in several ways gets the code of the first check it fails, in the order
docs/protocol.md ("Close codes and limits") gives."""

from __future__ import annotations

import base64

import msgpack
import pytest

from tests.game_server.conftest import token


async def closed_with(c, expected: int) -> None:
    assert await c.closed() == expected
    assert c.error is not None and c.error.code == expected


@pytest.mark.parametrize(("data", "code"), [
    (b"\xc1" * 2000, 4002),                                      # too large and garbage
    ("!" * 3000, 4002),                                          # too long and not base64
    (base64.b64encode(b"\xc1" * 2000).decode(), 4002),           # decodes too large, garbage
    (msgpack.packb([99, "x" * 2000]), 4002),                     # too large, unknown type
    (msgpack.packb([99, "x"]), 4003),                            # unknown type, junk fields
    (msgpack.packb([1]), 4001),                                  # known type (join), no token
    (msgpack.packb([3, 1, 0]), 4006),                            # input of the wrong arity, before join
    (msgpack.packb([3, 1, "x"]), 4001),                          # input with a str: the codec's check
])
async def test_the_first_failed_check_wins(node, data, code) -> None:
    c = await node.connect()
    await c.send_raw(data)
    await closed_with(c, code)


async def test_after_join_the_arity_is_checked(node) -> None:
    c = await node.player(token("m-arity", 5))
    await c.send_raw(msgpack.packb([3, 1, 0]))  # seated: now the game's arity decides
    await closed_with(c, 4001)
