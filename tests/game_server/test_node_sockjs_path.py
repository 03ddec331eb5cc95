"""The game over SockJS xhr-polling (text framing, base64 msgpack), end to end."""

from __future__ import annotations

import json

from engine import codec
from tests.game_server.conftest import assert_unaffected, token


class XhrPolling:
    """A SockJS 0.3 xhr-polling client speaking the game protocol."""

    def __init__(self, node, session_id: str):
        self.node = node
        self.base = f"/play/000/{session_id}"
        self.inbox: list = []
        self.close_frame: list | None = None

    async def post(self, path: str, data: str | None = None) -> tuple[int, str]:
        async with self.node.session.post(self.node.server.make_url(self.base + path),
                                          data=data) as r:
            return r.status, await r.text()

    async def open(self) -> None:
        assert await self.post("/xhr") == (200, "o\n")

    async def send(self, msg: codec.Message) -> None:
        status, _ = await self.post("/xhr_send", json.dumps([codec.to_text(codec.encode(msg))]))
        assert status == 204

    async def send_text(self, text: str) -> None:
        status, _ = await self.post("/xhr_send", json.dumps([text]))
        assert status == 204

    async def poll(self) -> None:
        status, body = await self.post("/xhr")
        assert status == 200
        body = body.strip()
        if body.startswith("a"):
            self.inbox += [codec.decode_text(t, max_size=1 << 22) for t in json.loads(body[1:])]
        elif body.startswith("c"):
            self.close_frame = json.loads(body[1:])

    async def expect(self, kind: type, polls: int = 40):
        for _ in range(polls):
            while self.inbox:
                m = self.inbox.pop(0)
                if isinstance(m, kind):
                    return m
            if self.close_frame:
                raise AssertionError(f"closed {self.close_frame}")
            await self.poll()
        raise AssertionError(f"no {kind.__name__}")


async def test_play_over_xhr_polling(node):
    c = XhrPolling(node, "s1-" + "x" * 20)
    await c.open()
    await c.send(codec.Join(token("x1", 5, "Poller")))
    w = await c.expect(codec.Welcome)
    key = await c.expect(codec.Keyframe)
    pid = w.player_id
    [player] = [e for e in w.config["schema"]["entities"] if e["kind"] == key.entities[pid][0]]
    assert key.entities[pid][1 + player["fields"].index("name")] == "Poller"
    await c.send(codec.Input(1, (100, 0, 0, 0)))
    ack = 1 + player["fields"].index(player["ack"])
    for _ in range(40):
        d = await c.expect(codec.Delta)
        if pid in d.updated and ack in d.updated[pid][::2]:
            break
    else:
        raise AssertionError("input never acknowledged")
    status, text = await node.get("/metrics")
    assert 'arena_players{transport="xhr-polling"} 1' in text


async def test_bad_base64_over_sockjs_closes_4001_only_that_session(node):
    ws_player = await node.player(token("x2", 1))
    c = XhrPolling(node, "s2-" + "x" * 20)
    await c.open()
    await c.send(codec.Join(token("x2", 2)))
    await c.expect(codec.Welcome)
    await c.send_text("%%% not base64 %%%")
    err = await c.expect(codec.Error)
    assert err == codec.Error(4001, "Bad message")
    for _ in range(10):
        if c.close_frame:
            break
        await c.poll()
    assert c.close_frame == [4001, "Bad message"]
    await assert_unaffected(ws_player)


async def test_play_over_sockjs_websocket(node):
    ws = await node.session.ws_connect(node.server.make_url("/play/000/w1-" + "x" * 20 + "/websocket"))
    assert (await ws.receive_str(timeout=3)) == "o"
    await ws.send_str(json.dumps([codec.to_text(codec.encode(codec.Join(token("x3", 3, "Sock"))))]))
    seen: list = []
    while not any(isinstance(m, codec.Delta) for m in seen):
        frame = await ws.receive_str(timeout=3)
        if frame.startswith("a"):
            seen += [codec.decode_text(t, max_size=1 << 22) for t in json.loads(frame[1:])]
    kinds = [type(m) for m in seen]
    assert kinds[:2] == [codec.Welcome, codec.Keyframe]
    status, text = await node.get("/metrics")
    assert 'arena_players{transport="sockjs-websocket"} 1' in text
    await ws.close()
