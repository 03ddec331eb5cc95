"""What the node tells the lobby about its rooms for "Live now" (the heartbeat's
`matches`, docs/protocol.md): per room the seconds left and the top scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .node import Node

LIVE_ROOMS_MAX = 1000  # rooms listed in one heartbeat (the lobby refuses more)
LIVE_TOP = 3           # leading players listed per room


def live_rooms(node: Node) -> list[dict]:
    """`[{match_id, left, top: [[name, score], ...]}]` for the running rooms (the most
    recent LIVE_ROOMS_MAX); `left` in real seconds (ticks left times the room's tick)."""
    out = []
    for room in list(node.rooms.values())[-LIVE_ROOMS_MAX:]:
        if room.closed:
            continue
        game = room.game
        out.append({"match_id": room.match_id, "left": round(game.clock * room.dt, 1),
                    "top": [[r.name, r.score] for r in game.results()[:LIVE_TOP]]})
    return out
