"""The bots' brains and the ack bookkeeping, without the network: every registered game is
played through the wire format as a node would (keyframes encoded and decoded, inputs
`[3, seq, *values]` encoded, decoded, clamped by the game's spec), with the game's own
brain and with the generic one, and the bot's acked-inputs accounting feeds the targets."""

from __future__ import annotations

import asyncio
import time

import pytest

from engine import codec
from engine.registry import registry
from loadtest import brain as brains
from loadtest import report
from loadtest.bot import Bot, BotConfig, _Match
from loadtest.stats import Group

GAMES = sorted(registry().games)


def new_match(gdef, seed: int):
    """(mode name, game, welcome.config) of a match of the game's first mode."""
    mode_name = next(iter(gdef.modes))
    c = gdef.config(mode_name)
    game = gdef.game(c, seed)
    return mode_name, game, welcome_config(gdef, mode_name, game, c)


def welcome_config(gdef, mode_name: str, game, c) -> dict:
    """What a room puts in `welcome.config` (game_server/room.py)."""
    return {**game.client_config(), "game": gdef.name, "mode": mode_name, "protocol": codec.PROTOCOL_VERSION,
            "sim_hz": c.sim_hz, "patch_hz": c.patch_hz, "time_limit": c.time_limit,
            "max_players": c.max_players, "reconnect_window": c.reconnect_window,
            "max_input_rate": c.max_input_rate, "match_id": "m1", "schema": gdef.schema()}


def play(name: str, generic: bool, ticks: int = 300) -> tuple[list[int], list[int], int]:
    """Two wire bots (plus the game's fill bots up to min_players) play `ticks` ticks:
    (each wire bot's last ack, its last seq, inputs whose values were out of range)."""
    gdef = registry().game(name)
    mode_name, game, config = new_match(gdef, 7)
    players = [game.join(100 + i, f"w{i}") for i in range(2)]
    for i in range(max(0, gdef.modes[mode_name].min_players - 2)):
        game.join(200 + i, f"b{i}", bot=True)
    made = [brains.GenericBrain(config, pid, pid) if generic else brains.make_brain(config, pid, pid)[0]
            for pid in players]
    ack_at = brains.ack_indices(config)
    seqs = [0, 0]
    clamped = 0
    for _ in range(ticks):
        wire = codec.decode(codec.encode(codec.Keyframe(game.tick, game.clock, game.entities(), [])), 1 << 20)
        for i, (pid, b) in enumerate(zip(players, made, strict=True)):
            values = b.think(wire.tick, wire.entities)
            assert len(values) == len(gdef.inputs) and all(type(v) is int for v in values)
            seqs[i] += 1
            msg = codec.decode(codec.encode(codec.Input(seqs[i], values)))
            clamped += gdef.clamp(msg.values) != tuple(values)
            game.submit(pid, msg.seq, gdef.clamp(msg.values))
        game.step()
        game.drain_events()
        if game.over:
            break
    ents = game.entities()
    acks = [ents[pid][ack_at[ents[pid][0]]] for pid in players]
    return acks, seqs, clamped


@pytest.mark.parametrize("generic", [False, True], ids=["game-brain", "generic-brain"])
@pytest.mark.parametrize("name", GAMES)
def test_every_game_is_played_through_the_wire_and_acks_its_inputs(name, generic):
    acks, seqs, clamped = play(name, generic)
    assert clamped == 0  # a brain keeps its values inside the input spec
    for ack, seq in zip(acks, seqs, strict=True):
        assert 0 < ack <= seq


def test_the_registry_gives_the_game_its_own_brain_and_others_the_generic_one():
    for name in GAMES:
        gdef = registry().game(name)
        _, _, config = new_match(gdef, 1)
        made, own = brains.make_brain(config, 1, 1)
        assert own == (gdef.bot is not None)
        assert own or isinstance(made, brains.GenericBrain)
    made, own = brains.make_brain({"game": "no-such-game", "schema": {}}, 1, 1)
    assert not own and isinstance(made, brains.GenericBrain) and made.think(0, {}) == ()


def test_generic_brain_walks_inside_the_ranges_and_wraps():
    config = {"sim_hz": 10, "schema": {
        "entities": [{"kind": 5, "name": "p", "fields": ["name", "px", "py", "seen"],
                      "interpolate": ["px", "py"], "ack": "seen"}],
        "inputs": [{"name": "a", "lo": -3, "hi": 3, "wrap": False},
                   {"name": "b", "lo": 0, "hi": 359, "wrap": True},
                   {"name": "c", "lo": 0, "hi": 1, "wrap": False}]}}
    assert brains.ack_indices(config) == {5: 4}
    assert brains.position_indices(config) == {5: (2, 3)}
    b = brains.GenericBrain(config, 9, 3)
    seen = [set(), set(), set()]
    for tick in range(2000):
        values = b.think(tick, {9: [5, "me", 10, 20, 0]})
        for s, v, (lo, hi, _) in zip(seen, values, b.ranges, strict=True):
            assert lo <= v <= hi
            s.add(v)
    assert seen[0] == set(range(-3, 4)) and seen[2] == {0, 1} and len(seen[1]) > 300
    assert b.active
    b.think(3000, {})
    assert not b.active  # no own entity: no ack to expect


def test_generic_brain_changes_course_when_its_position_does_not_move():
    config = {"sim_hz": 10, "schema": {
        "entities": [{"kind": 1, "name": "p", "fields": ["x", "y"], "interpolate": ["x", "y"]}],
        "inputs": [{"name": "v", "lo": 0, "hi": 10 ** 9}]}}
    b = brains.GenericBrain(config, 1, 3)
    fresh = []
    b._fresh = lambda: fresh.append(1) or [0]
    for tick, x in ((0, 0), (5, 0), (10, 0), (20, 7), (30, 9), (35, 9), (40, 9)):
        b.think(tick, {1: (1, x, 0)})
    assert fresh == [1, 1]  # stuck from 0 to 10 and from 30 to 40 (checked once a second)


# --- acks -> the acked_ratio target ----------------------------------------------------------

class _Conn:
    ws = None  # not a raw websocket: the bot awaits `send`

    def __init__(self):
        self.sent: list[bytes] = []

    async def send(self, payload: bytes) -> None:
        self.sent.append(payload)


def _bot_in_match(ack_follows: bool, inputs: int = 60) -> Group:
    """A bot fed a welcome and one keyframe per input: its own player's ack follows the
    inputs it sent, or stays 0. Returns what the bot measured."""
    gdef = registry().game(GAMES[0])
    _, game, config = new_match(gdef, 1)
    pid = game.join(1, "me")
    kind = game.entities()[pid][0]
    ack_index = brains.ack_indices(config)[kind]
    groups = {"normal": Group(), "slow": Group()}
    bot = Bot(0, BotConfig("http://127.0.0.1:1"), None, groups, asyncio.Event())
    m = bot.match = _Match(t_queue=0.0, t_connect=0.0)
    bot.conn = _Conn()
    assert bot._on_message(codec.encode(codec.Welcome(pid, "m1", "r", 0, config)), m) is codec.Welcome

    def state(tick: int, ack: int) -> bytes:
        ents = dict(game.entities())
        me = list(ents[pid])
        me[ack_index] = ack
        ents[pid] = tuple(me)
        return codec.encode(codec.Keyframe(tick, 100, ents, []))

    async def run() -> None:
        bot._on_message(state(1, 0), m)
        for tick in range(2, inputs + 2):
            pending = bot.tick(time.monotonic())  # the worker passes its loop's clock
            if pending is not None:
                await pending
            bot._on_message(state(tick, bot.seq if ack_follows else 0), m)
        bot._on_events([[codec.EV_MATCH_END, "time", []]], m)

    asyncio.run(run())
    bot.flush_counts()  # as the worker does once a second
    assert len(bot.conn.sent) >= inputs
    first = codec.decode(bot.conn.sent[0])
    assert type(first) is codec.Input and len(first.values) == len(gdef.inputs)
    return groups["normal"]


NAMES = ("inputs acked / inputs awaiting an ack", "input-to-ack p99 (patch intervals)")


def _summary(g: Group) -> dict:
    s = report.group_summary(g, 20.0, 10.0, 1)
    return {"summary": s, "node": {}, "groups": {"normal": s}}


def test_a_run_whose_bots_get_acks_passes_the_acked_target():
    g = _bot_in_match(ack_follows=True)
    r = _summary(g)
    assert r["summary"]["inputs"]["acked"] > 0 and r["summary"]["inputs"]["acked_ratio"] == 1.0
    targets = report.check_targets(r, {"acked_ratio": 0.99, "ack_p99_intervals": 1000})
    assert {t["name"]: t["pass"] for t in targets} == dict.fromkeys(NAMES, True)


def test_a_run_whose_bots_get_no_acks_fails_its_targets():
    g = _bot_in_match(ack_follows=False)
    r = _summary(g)
    inputs = r["summary"]["inputs"]
    assert inputs["acked"] == 0 and inputs["awaiting_ack"] > 0
    assert inputs["acked_ratio"] in (0.0, None)
    targets = report.check_targets(r, {"acked_ratio": 0.99, "ack_p99_intervals": 1000})
    assert {t["name"]: t["pass"] for t in targets} == dict.fromkeys(NAMES, False)
    # so does a long one, whose inputs overflow the pending queue and count as lost
    g = _bot_in_match(ack_follows=False, inputs=400)
    r = _summary(g)
    assert r["summary"]["inputs"]["never_acked"] > 0 and r["summary"]["inputs"]["acked_ratio"] == 0.0
    assert not report.check_targets(r, {"acked_ratio": 0.5})[0]["pass"]


def test_an_own_entity_that_breaks_its_schema_acks_nothing_and_breaks_nothing():
    config = {"game": "no-such-game", "sim_hz": 20, "patch_hz": 20, "schema": {
        "entities": [{"kind": 1, "name": "p", "fields": ["x", "y", "ack"], "interpolate": ["x", "y"],
                      "ack": "ack"}],
        "inputs": [{"name": "v", "lo": 0, "hi": 9}]}}
    groups = {"normal": Group(), "slow": Group()}
    bot = Bot(0, BotConfig("http://127.0.0.1:1"), None, groups, asyncio.Event())
    m = bot.match = _Match(t_queue=0.0, t_connect=0.0)
    bot.conn = _Conn()
    bot._on_message(codec.encode(codec.Welcome(4, "m1", "r", 0, config)), m)

    async def run() -> None:
        for tick, me in enumerate([[1, 0, 0, 0], [1, 0], [1, 0, 0, "7"], [1, 0, 0, 99]], start=1):
            bot._on_message(codec.encode(codec.Keyframe(tick, 100, {4: me}, [])), m)
            await bot.tick(time.monotonic())

    asyncio.run(run())
    bot.flush_counts()
    g = groups["normal"]
    assert g.counters["brain_generic"] == 1 and not g.errors
    assert g.hist["input_ack"].count == 3  # only the last, well-formed state acked (seq 1..3)
