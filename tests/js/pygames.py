"""Bridge to the game registry for the JS shell tests (tests/js/schema.test.mjs, games.test.mjs).

Stdin: one JSON request; stdout: one JSON answer.
- {"op": "games"}: every registered game (engine.registry, as the node loads it) ->
  {"schema": GameDef.schema(), "config": welcome.config of a new match of its first mode,
  "modes": [...], "browser": path}.
- {"op": "clamp", "game": name, "values": [[...], ...]}: GameDef.clamp of each list.
- {"op": "match", "game": name, "ticks": n}: a match of its first mode with one human
  (user 1) and bots up to the mode's minimum, stepped `ticks` times: {"config" (as the
  node's welcome has it), "player",
  "patches": [{"tick", "clock", "entities": {id: fields}, "events": [...]}, ...]}.
"""

from __future__ import annotations

import json
import sys

from engine.codec import PROTOCOL_VERSION
from engine.registry import registry


def welcome_config(d, mode: str, game) -> dict:
    """welcome.config as the node's Room builds it: the game's keys, then the room's."""
    c = game.config
    return {**game.client_config(), "game": d.name, "mode": mode, "protocol": PROTOCOL_VERSION,
            "sim_hz": c.sim_hz, "patch_hz": c.patch_hz, "time_limit": c.time_limit,
            "max_players": c.max_players, "reconnect_window": c.reconnect_window,
            "max_input_rate": c.max_input_rate, "match_id": "m1", "schema": d.schema()}


def games() -> dict:
    out = {}
    for name, d in registry().games.items():
        mode = next(iter(d.modes))
        out[name] = {"schema": d.schema(), "modes": list(d.modes), "browser": d.browser,
                     "config": welcome_config(d, mode, d.new(mode, seed=1))}
    return out


def match(name: str, ticks: int) -> dict:
    d = registry().game(name)
    mode_name, mode = next(iter(d.modes.items()))
    game = d.new(mode_name, seed=7)
    player = game.join(1, "ann")
    for i in range(max(1, mode.min_players - 1)):
        game.join(0, f"bot {i + 1}", bot=True)
    patches = []
    for _ in range(ticks):
        game.step()
        tick = len(patches) + 1
        patches.append({"tick": tick, "clock": game.clock,
                        "entities": {str(k): list(v) for k, v in game.entities().items()},
                        "events": game.drain_events()})
    config = welcome_config(d, mode_name, game)
    return {"config": config, "player": player, "patches": patches}


def main() -> None:
    req = json.load(sys.stdin)
    if req["op"] == "games":
        json.dump(games(), sys.stdout)
    elif req["op"] == "clamp":
        d = registry().game(req["game"])
        json.dump([list(d.clamp(v)) for v in req["values"]], sys.stdout)
    elif req["op"] == "match":
        json.dump(match(req["game"], int(req["ticks"])), sys.stdout)
    else:
        raise SystemExit(f"unknown op {req['op']!r}")


if __name__ == "__main__":
    main()
