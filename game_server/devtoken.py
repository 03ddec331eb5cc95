"""`python -m game_server.devtoken`: print a seat token, for playing without the lobby.

    python -m game_server.devtoken --match m1 --user 1 --name Ann --node node-1 \
        [--mode sprint] [--bots 3]

Signed with SEAT_SECRET (default: the development secret), like the lobby's tokens. The
mode must be one of the registry's (engine.registry: GAMES, else the default games); the
default is the first registered mode.
"""

from __future__ import annotations

import argparse
import os
import time

from engine.auth import issue_seat_token
from engine.registry import registry

from .settings import DEV_SEAT_SECRET


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m game_server.devtoken", description=__doc__.splitlines()[0])
    p.add_argument("--match", required=True)
    p.add_argument("--user", type=int, required=True)
    p.add_argument("--name", required=True)
    p.add_argument("--node", default="node-1")
    modes = list(registry().modes)
    p.add_argument("--mode", choices=modes, default=modes[0], metavar="MODE",
                   help=f"one of: {', '.join(modes)} (default {modes[0]})")
    p.add_argument("--bots", type=int, default=0)
    p.add_argument("--seats", type=int, default=1)
    p.add_argument("--role", choices=("player", "spectator"), default="player")
    p.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600 for dev use)")
    args = p.parse_args(argv)
    print(issue_seat_token(os.environ.get("SEAT_SECRET") or DEV_SEAT_SECRET, user_id=args.user,
                           name=args.name, match_id=args.match, node_id=args.node,
                           now=time.time(), ttl=args.ttl, role=args.role, mode=args.mode,
                           seats=args.seats, bots=args.bots))


if __name__ == "__main__":
    main()
