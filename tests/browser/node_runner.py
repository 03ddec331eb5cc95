"""A game node for the browser tests: `python -m game_server` plus game overrides.

    python -m tests.browser.node_runner --port P --lobby-url URL --outbox F --overrides JSON
        [--mode-overrides '{"mode": {field: value}}']

The overrides (`NodeSettings.game_overrides`, every game's config fields it has) make an
Arena match short and put the two spawn points in sight of each other; the per-mode ones
change one mode's config in this process's registry (e.g. a short tag match), so a test
can play each game to its end in a few seconds.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging

from aiohttp import web

from engine.registry import registry
from game_server.app import build_app
from game_server.settings import NodeSettings


def override_modes(changes: dict[str, dict]) -> None:
    """Replace fields of these modes' configs in the process-wide registry."""
    for mode_name, fields in changes.items():
        gdef, mode = registry().mode(mode_name)
        gdef.modes[mode_name] = dataclasses.replace(
            mode, config=dataclasses.replace(mode.config, **fields))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--node-id", default="browser-node")
    p.add_argument("--lobby-url", required=True)
    p.add_argument("--outbox", required=True)
    p.add_argument("--overrides", default="{}")
    p.add_argument("--mode-overrides", default="{}")
    args = p.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    overrides = json.loads(args.overrides)
    for key in ("spawns", "walls", "pickups"):  # JSON lists -> the config's tuples
        if key in overrides:
            overrides[key] = tuple(tuple(v) for v in overrides[key])
    settings = NodeSettings.from_env(host="127.0.0.1", port=args.port, node_id=args.node_id,
                                     lobby_url=args.lobby_url, outbox_path=args.outbox)
    settings.game_overrides = overrides
    override_modes(json.loads(args.mode_overrides))
    web.run_app(build_app(settings), host="127.0.0.1", port=args.port, print=None,
                access_log=None, shutdown_timeout=5)


if __name__ == "__main__":
    main()
