"""Bridge to replays for the JS replay player's tests (tests/js/replay.test.mjs).

Stdin: one JSON request; stdout: one JSON answer.
- {"op": "frames", "game": name, "seed": n, "seconds": s}: a messy match of the game's
  first mode (joins, leaves, reconnects, inputs: tests/games/test_replays.record) recorded
  as a node records it, to its end, then `engine.frames.build_frames` of its replay file ->
  {"frames": base64 of the frames file, "ticks": the patch ticks, "states": {tick:
  {id: fields}} the game's own entities after each patch tick (the truth, from the
  original match), "results": its final rows, "players": the result as posted,
  "names": {player id: name} of every join, "end_reason"}.
"""

from __future__ import annotations

import base64
import json
import sys

from engine.frames import build_frames, load_frames
from engine.recording import load_replay
from engine.registry import registry
from engine.replay import result_players
from tests.games.test_replays import record


def frames(name: str, seed: int, seconds: int) -> dict:
    gdef = registry().game(name)
    rec, data, states = record(gdef, seed, seconds=seconds)
    out = build_frames(load_replay(data))
    doc = load_frames(out)
    patch_ticks = doc["ticks"] if doc["truncated"] else doc["ticks"][:-1]   # then match_end
    names = {str(r[5]): r[3] for r in rec.log.records if r[1] == "join"}
    return {"frames": base64.b64encode(out).decode(), "ticks": patch_ticks,
            "states": {str(t): {str(k): list(v) for k, v in states[t].items()} for t in patch_ticks},
            "results": [list(r.row()) for r in rec.results()],
            "players": result_players(gdef, rec.results()), "names": names,
            "end_reason": rec.end_reason}


def main() -> None:
    req = json.load(sys.stdin)
    if req["op"] == "frames":
        json.dump(frames(req["game"], int(req.get("seed", 1)), int(req.get("seconds", 20))),
                  sys.stdout)
    else:
        raise SystemExit(f"unknown op {req['op']!r}")


if __name__ == "__main__":
    main()
