"""Test-only games for the node tests, registered with `NodeSettings(games=...)`.

- `probe` (module-level `GAME`): each player is an entity showing the last input values
  the game got, so a test sees what the node passed on (clamped, wrapped); every tick it
  emits one game event whose code walks 16..127; results carry one stats column.
`tests.game_server.broken_game` holds a game whose constructor raises.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.game import (
    EntityKind,
    EventKind,
    Game,
    GameFull,
    InputField,
    Mode,
    PlayerResult,
    ResultColumn,
    define,
)

KIND_PROBE = 7
EVENT_CODES = range(16, 128)


@dataclass(frozen=True)
class ProbeConfig:
    sim_hz: int = 30
    patch_hz: int = 30
    time_limit: int = 3600        # seconds
    max_players: int = 4
    reconnect_window: int = 20
    max_input_rate: int = 60


class Probe(Game):
    def __init__(self, config: ProbeConfig, seed: int):
        self.config = config
        self.tick = 0
        self._players: dict[int, list] = {}   # pid -> [user_id, name, bot, a, b, ack, inputs]
        self._events: list[list] = []
        self._next = 1

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        if len(self._players) >= self.config.max_players:
            raise GameFull("probe is full")
        pid, self._next = self._next, self._next + 1
        self._players[pid] = [0 if bot else user_id, name, bot, 0, 0, 0, 0]
        return pid

    def leave(self, player_id: int) -> None:
        self._players.pop(player_id, None)

    def set_connected(self, player_id: int, connected: bool) -> None:
        pass

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        p = self._players.get(player_id)
        if p is None:
            return False
        p[3], p[4] = values
        p[5] = seq
        p[6] += 1
        return True

    def step(self) -> None:
        self.tick += 1
        code = EVENT_CODES[self.tick % len(EVENT_CODES)]
        self._events.append([code, self.tick])

    def entities(self) -> dict[int, tuple]:
        return {pid: (KIND_PROBE, p[3], p[4], p[5], p[1]) for pid, p in self._players.items()}

    def drain_events(self) -> list[list]:
        events, self._events = self._events, []
        return events

    @property
    def clock(self) -> int:
        return max(0, self.config.time_limit * self.config.sim_hz - self.tick)

    @property
    def over(self) -> bool:
        return self.clock == 0

    @property
    def end_reason(self) -> str:
        return "time" if self.over else ""

    def results(self) -> list[PlayerResult]:
        rows = sorted(self._players.items(), key=lambda kv: -kv[1][3])
        return [PlayerResult(pid, p[0], p[1], p[3], i + 1, p[2], (p[6],))
                for i, (pid, p) in enumerate(rows)]

    def client_config(self) -> dict:
        # "mode" and "sim_hz" are the room's keys: the room's values must win
        return {"probe": True, "mode": "not-the-room's", "sim_hz": -1}


GAME = define(
    name="probe",
    title="Probe",
    game=Probe,
    modes=[Mode("probe", ProbeConfig(), min_players=1, max_players=4),
           Mode("probe-short", ProbeConfig(time_limit=2), min_players=1, max_players=4)],
    entities=[EntityKind(KIND_PROBE, "probe", ("a", "b", "ack", "name"), ack="ack")],
    events=[EventKind(code, f"e{code}", ("tick",)) for code in EVENT_CODES],
    inputs=[InputField("a", 0, 10), InputField("b", -5, 5, wrap=True)],
    results=[ResultColumn("inputs", "Inputs")],
)
