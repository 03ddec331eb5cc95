"""Test players: a browser-like lobby session (`lobby.live.Session`) and a seat on a node
over the raw websocket with `engine.codec`; plus reads of the lobby's database."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import aiohttp
import psycopg

from cluster import Cluster
from engine import codec
from lobby.live import Session

T = TypeVar("T")
MATCH_END = codec.EV_MATCH_END  # the room event (docs/protocol.md)


def wait_for(predicate: Callable[[], T], timeout: float, what: str,
             interval: float = 0.1) -> T:
    """The first truthy value of predicate(), polled; AssertionError after timeout."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


class Player:
    """A guest signed in on the lobby."""

    def __init__(self, lobby_url: str) -> None:
        self.http = Session(lobby_url, timeout=15)
        self.user_id: int = self.http.guest()["user_id"]

    def queue(self, mode: str = "sprint") -> dict:
        status, body = self.http.request("POST", "/api/queue", {"mode": mode})
        assert status == 200, (status, body)
        return body

    def state(self) -> dict:
        status, body = self.http.request("GET", "/api/queue")
        assert status == 200, (status, body)
        return body

    def me(self) -> dict:
        return self.http.request("GET", "/api/me")[1]


def queue_and_match(players: list[Player], timeout: float = 20) -> list[dict]:
    """Queue every player; their "matched" answers, in order."""
    for p in players:
        p.queue()

    def states() -> list[dict] | None:
        got = [p.state() for p in players]
        return got if all(s["status"] == "matched" for s in got) else None

    return wait_for(states, timeout, "every player matched", interval=0.2)


def by_match(states: list[dict]) -> dict[str, list[int]]:
    """match id -> indexes of the players in it."""
    out: dict[str, list[int]] = {}
    for i, s in enumerate(states):
        out.setdefault(s["match_id"], []).append(i)
    return out


@dataclass
class Seat:
    """One player's websocket on a node, read in the background until it closes."""

    ws: aiohttp.ClientWebSocketResponse
    http: aiohttp.ClientSession
    welcome: codec.Welcome
    end: tuple | None = None           # the match_end event
    errors: list[codec.Error] = field(default_factory=list)
    close_code: int | None = None
    frames: int = 0
    reader: asyncio.Task | None = None

    @classmethod
    async def join(cls, node_url: str, token: str, timeout: float = 15) -> Seat:
        http = aiohttp.ClientSession()
        try:
            ws = await http.ws_connect(node_url.replace("http://", "ws://") + "/play/websocket",
                                       timeout=aiohttp.ClientWSTimeout(ws_close=5))
            await ws.send_bytes(codec.encode(codec.Join(token)))
            async with asyncio.timeout(timeout):
                while True:
                    frame = await ws.receive()
                    if frame.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                        raise AssertionError(f"closed before welcome: {ws.close_code}")
                    msg = codec.decode_any(frame.data, max_size=1 << 22)
                    if isinstance(msg, codec.Error):
                        raise AssertionError(f"node refused the seat: {msg}")
                    if isinstance(msg, codec.Welcome):
                        break
        except BaseException:
            await http.close()
            raise
        seat = cls(ws, http, msg)
        seat.reader = asyncio.create_task(seat._read())
        return seat

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                if frame.type not in (aiohttp.WSMsgType.BINARY, aiohttp.WSMsgType.TEXT):
                    break
                self.frames += 1
                msg = codec.decode_any(frame.data, max_size=1 << 22)
                if isinstance(msg, codec.Error):
                    self.errors.append(msg)
                for event in getattr(msg, "events", None) or []:
                    if event[0] == MATCH_END:
                        self.end = event
        except (aiohttp.ClientError, ConnectionError):
            pass
        finally:
            self.close_code = self.ws.close_code
            await self.http.close()

    async def closed(self, timeout: float) -> None:
        """Until the node closed the socket (or it broke)."""
        async with asyncio.timeout(timeout):
            await asyncio.shield(self.reader)

    async def close(self) -> None:
        await self.ws.close()
        if self.reader:
            await asyncio.wait([self.reader], timeout=5)
        await self.http.close()


async def join_all(states: list[dict]) -> list[Seat]:
    return list(await asyncio.gather(*(Seat.join(s["node_url"], s["token"]) for s in states)))


def sql(cluster: Cluster, query: str, params: tuple = ()) -> list[tuple[Any, ...]]:
    """Rows from the lobby's database (what the lobby recorded, not what it answers)."""
    with psycopg.connect(cluster.database_url, connect_timeout=5) as conn:
        return conn.execute(query, params).fetchall()


def match_row(cluster: Cluster, match_id: str) -> tuple[str, str]:
    """(status, reason) of a match."""
    return sql(cluster, "SELECT status, reason FROM matchmaking_match WHERE match_id = %s",
               (match_id,))[0]


def reports(cluster: Cluster, match_ids: list[str]) -> dict[str, tuple[str, int]]:
    """match id -> (status, duplicates) of its one ResultReport row."""
    rows = sql(cluster, "SELECT match_id, status, duplicates FROM ratings_resultreport "
                        "WHERE match_id = ANY(%s)", (match_ids,))
    return {m: (s, d) for m, s, d in rows}
