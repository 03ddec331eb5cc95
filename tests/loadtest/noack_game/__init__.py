"""A broken game for the load test's own tests: it plays (players move with their input)
but never records an input's `seq` as the player's `ack`. A load test of it must FAIL its
targets (tests/loadtest/test_scenarios.py). Registered with GAMES=tests.loadtest.noack_game.
"""

from __future__ import annotations

from dataclasses import dataclass

from engine.game import EntityKind, Game, GameFull, InputField, Mode, PlayerResult, define


@dataclass(frozen=True)
class Config:
    sim_hz: int = 20
    patch_hz: int = 20
    time_limit: int = 60
    max_players: int = 4
    reconnect_window: int = 5
    max_input_rate: int = 60


class NoAck(Game):
    def __init__(self, config: Config, seed: int):
        self.config = config
        self.tick = 0
        self.players: dict[int, list] = {}   # id -> [x, y, user_id, name, bot, mx, my]

    def join(self, user_id: int, name: str, *, bot: bool = False) -> int:
        if len(self.players) >= self.config.max_players:
            raise GameFull()
        pid = max(self.players, default=0) + 1
        self.players[pid] = [0, 0, user_id, name[:24], bot, 0, 0]
        return pid

    def leave(self, player_id: int) -> None:
        self.players.pop(player_id, None)

    def set_connected(self, player_id: int, connected: bool) -> None:
        pass

    def submit(self, player_id: int, seq: int, values: tuple[int, ...]) -> bool:
        p = self.players.get(player_id)
        if p is None:
            return False
        p[5], p[6] = values   # applied, but the seq is dropped: the bug
        return True

    def step(self) -> None:
        if not self.over:
            self.tick += 1
            for p in self.players.values():
                p[0], p[1] = p[0] + p[5], p[1] + p[6]

    def entities(self) -> dict[int, tuple]:
        return {pid: (1, p[0], p[1], 0, p[3]) for pid, p in self.players.items()}

    def drain_events(self) -> list[list]:
        return []

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
        return [PlayerResult(pid, p[2], p[3], 0, i + 1, p[4])
                for i, (pid, p) in enumerate(sorted(self.players.items()))]

    def client_config(self) -> dict:
        return {}


GAME = define(
    name="noack", title="No acks", game=NoAck,
    modes=[Mode("noack", Config(), min_players=1, max_players=4)],
    entities=[EntityKind(1, "player", ("x", "y", "ack", "name"), interpolate=("x", "y"), ack="ack")],
    events=[],
    inputs=[InputField("mx", -1, 1), InputField("my", -1, 1)],
    results=[],
)
