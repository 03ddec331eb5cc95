"""A test-only game whose constructor raises (the node must answer 4018, not 4001)."""

from __future__ import annotations

from engine.game import Mode, define
from tests.game_server.probe_game import GAME as PROBE
from tests.game_server.probe_game import Probe, ProbeConfig


class Broken(Probe):
    def __init__(self, config: ProbeConfig, seed: int):
        raise RuntimeError("broken on purpose")


GAME = define(name="broken", title="Broken", game=Broken,
              modes=[Mode("broken", ProbeConfig(), min_players=1, max_players=4)],
              entities=PROBE.entities, events=PROBE.events, inputs=PROBE.inputs,
              results=PROBE.results)
