"""A game node for the browser tests: `python -m game_server` plus game overrides.

    python -m tests.browser.node_runner --port P --lobby-url URL --outbox F --overrides JSON

The overrides (`ArenaConfig.replace(**...)`) make a match short and put the two spawn
points in sight of each other, so a test can play it to its end in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import logging

from aiohttp import web

from game_server.app import build_app
from game_server.settings import NodeSettings


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--node-id", default="browser-node")
    p.add_argument("--lobby-url", required=True)
    p.add_argument("--outbox", required=True)
    p.add_argument("--overrides", default="{}")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = json.loads(args.overrides)
    for key in ("spawns", "walls", "pickups"):  # JSON lists -> the config's tuples
        if key in overrides:
            overrides[key] = tuple(tuple(v) for v in overrides[key])
    settings = NodeSettings.from_env(host="127.0.0.1", port=args.port, node_id=args.node_id,
                                     lobby_url=args.lobby_url, outbox_path=args.outbox)
    settings.game_overrides = overrides
    web.run_app(build_app(settings), host="127.0.0.1", port=args.port, print=None,
                access_log=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
