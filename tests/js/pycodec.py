"""Bridge to the Python codec for the JS codec tests (tests/js/codec.test.mjs).

Reads one JSON request on stdin, writes one JSON answer on stdout:
- {"op": "server_messages", "seed": n}: node-to-client messages encoded by engine/codec.py,
  as hex, with their fields as JSON (entity keys as strings), including random deltas.
- {"op": "decode", "hex": [...]}: decodes client messages; answers their fields or the
  DecodeError code.
"""

from __future__ import annotations

import json
import random
import sys

from engine import codec
from engine.registry import load


def _entities_json(entities: dict) -> dict:
    return {str(k): list(v) for k, v in entities.items()}


def _random_state(rng: random.Random) -> dict[int, tuple]:
    state: dict[int, tuple] = {}
    for pid in rng.sample(range(1, 17), rng.randint(0, 6)):
        state[pid] = (1, rng.randint(0, 16000), rng.randint(0, 10000), rng.randint(-3142, 3142),
                      rng.randint(0, 100), rng.randint(0, 40), rng.randint(0, 9),
                      rng.randint(0, 9), rng.randint(0, 7), rng.randint(0, 2**32 - 1),
                      rng.choice(["ann", "bob", "Zoë ⚡", "x" * 24]))
    for oid in rng.sample(range(1000, 65536), rng.randint(0, 8)):
        if rng.random() < 0.5:
            state[oid] = (2, rng.randint(0, 16000), rng.randint(0, 10000), rng.randint(-233, 233),
                          rng.randint(-233, 233), rng.randint(0, 2**32 - 1), rng.randint(1, 16))
        else:
            state[oid] = (3, rng.randint(0, 16000), rng.randint(0, 10000), rng.choice([1, 2]))
    return state


def _mutate(rng: random.Random, state: dict[int, tuple]) -> dict[int, tuple]:
    out = {}
    for k, v in state.items():
        r = rng.random()
        if r < 0.15:
            continue  # removed
        if r < 0.6 and v[0] == 1:
            fields = list(v)
            for i in rng.sample(range(1, len(fields) - 1), rng.randint(1, 4)):
                fields[i] = fields[i] + rng.randint(1, 50)
            v = tuple(fields)
        out[k] = v
    out.update(_random_state(rng))
    return out


def server_messages(seed: int) -> list[dict]:
    rng = random.Random(seed)
    cases: list[dict] = []

    def add(msg: codec.Message, fields: dict) -> None:
        cases.append({"hex": codec.encode(msg).hex(), "type": msg.TYPE, "fields": fields})

    config = {"sim_hz": 30, "patch_hz": 20, "width": 1600, "height": 1000,
              "walls": [[740, 440, 120, 120]], "player_radius": 16, "mode": "sprint",
              "game": "arena", "protocol": codec.PROTOCOL_VERSION,
              "schema": load("games.arena").game("arena").schema()}
    add(codec.Welcome(7, "m-abc", "r" * 40, 123456, config),
        {"playerId": 7, "matchId": "m-abc", "resumeToken": "r" * 40, "tick": 123456,
         "config": config})
    add(codec.Error(4015, "Resume failed"), {"code": 4015, "reason": "Resume failed"})
    add(codec.Pong(2**32 - 1, 99), {"t": 2**32 - 1, "tick": 99})
    results = [[1, 42, "ann", 9, 1, False, 3, 0], [2, 0, "bot 2", 2, 2, True, 0, 3]]
    end = [codec.EV_MATCH_END, "score", results]
    add(codec.Event(600, [end]), {"tick": 600, "events": [end]})
    prev = _random_state(rng)
    events = [[16, 2, 3, 20], [codec.EV_JOINED, 3, "Zoë ⚡"]]
    add(codec.Keyframe(10, 5400, prev, events),
        {"tick": 10, "clock": 5400, "entities": _entities_json(prev), "events": events})
    tick = 10
    for _ in range(40):
        cur = _mutate(rng, prev)
        msg = codec.delta_message(tick + 2, tick, 5400 - tick, prev, cur, [])
        add(msg, {"tick": tick + 2, "base": tick, "clock": 5400 - tick,
                  "added": _entities_json(msg.added), "removed": msg.removed,
                  "updated": {str(k): list(v) for k, v in msg.updated.items()}, "events": [],
                  "_prev": _entities_json(prev), "_cur": _entities_json(cur)})
        prev, tick = cur, tick + 2
    return cases


def decode_client(hexes: list[str]) -> list[dict]:
    out = []
    for h in hexes:
        try:
            msg = codec.decode(bytes.fromhex(h))
        except codec.DecodeError as e:
            out.append({"error": e.code})
            continue
        values = {name: getattr(msg, name) for name in msg.__dataclass_fields__}
        if "values" in values:
            values["values"] = list(values["values"])
        if "entities" in values:  # int keys: JSON would make them strings anyway; check here
            values["entities"] = {str(k) if type(k) is int else "BAD": list(v)
                                  for k, v in values["entities"].items()}
        flat = [x for v in values.values() for x in (v if isinstance(v, list) else [v])]
        out.append({"type": msg.TYPE, "fields": values,
                    "ints": all(type(v) is int for v in flat if not isinstance(v, str))})
    return out


def main() -> None:
    req = json.load(sys.stdin)
    if req["op"] == "server_messages":
        json.dump(server_messages(int(req["seed"])), sys.stdout)
    elif req["op"] == "decode":
        json.dump(decode_client(req["hex"]), sys.stdout)
    else:
        raise SystemExit(f"unknown op {req['op']!r}")


if __name__ == "__main__":
    main()
