"""A node hosts any registered game: the second game (tag) played to its result over the raw
websocket and SockJS, and the generic rules checked with test-only games registered through
`NodeSettings.games` (tests/game_server/probe_game.py, broken_game.py): input arity and
ranges from the game's spec, game events passed on untouched, the room's keys in
`welcome.config`, results with the game's stats columns, 4018 for a game that fails to start,
4010 for a mode the node does not run, and the modes in the heartbeats."""

from __future__ import annotations

import asyncio
import logging
import time

from engine import codec
from engine.registry import registry
from tests.game_server.conftest import Client, assert_unaffected, token
from tests.game_server.probe_game import EVENT_CODES, KIND_PROBE
from tests.game_server.probe_game import GAME as PROBE_GAME
from tests.game_server.test_node_sockjs_path import XhrPolling

PROBE = "tests.game_server.probe_game"
BROKEN = "tests.game_server.broken_game"
GAMES = f"games.arena,{PROBE},{BROKEN}"
#: results delivered quickly to the fake lobby
QUICK = {"outbox_retry_min": 0.05, "outbox_retry_max": 0.2}
#: a tag match of 20 (game) seconds, played 10x faster
TAG_FAST = {"time_scale": 10.0, "game_overrides": {"time_limit": 20}}


async def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def check_tag_result(rows: list, sent: dict, user: int) -> None:
    """match_end rows `[player_id, user_id, name, score, placement, bot, tags, caught]` and
    the lobby's copy of them, with the game, the mode and the stats by column name."""
    columns = [c.name for c in registry().game("tag").results]
    assert columns == ["tags", "caught"]
    assert len(rows) == 3 and [r[1] for r in rows].count(user) == 1
    assert all(len(r) == 6 + len(columns) for r in rows)
    assert [r[4] for r in rows] == sorted(r[4] for r in rows)  # by placement
    assert sent["game"] == "tag" and sent["mode"] == "tag" and sent["status"] == "finished"
    assert [(p["user_id"], p["name"], p["score"], p["placement"], p["bot"], p["stats"])
            for p in sent["players"]] \
        == [(r[1], r[2], r[3], r[4], r[5], dict(zip(columns, r[6:], strict=True))) for r in rows]


async def test_tag_plays_to_its_result_over_the_raw_websocket(make_node, lobby):
    n = await make_node(lobby_url=lobby.url, **TAG_FAST, **QUICK)
    c = await n.player(token("tag-ws", 7, "Ann", mode="tag", bots=2))
    config = c.welcome.config
    assert config["game"] == "tag" and config["mode"] == "tag" and config["protocol"] == 2
    assert config["schema"] == registry().game("tag").schema()
    pid = c.welcome.player_id
    assert c.field(pid, "name") == "Ann"
    x0 = c.field(pid, "x")
    seq = 0
    for _ in range(5):
        seq = await c.input(mx=100)
    for _ in range(60):
        await c.expect(codec.Delta)
        if c.ack() == seq:
            break
    assert c.ack() == seq and c.field(pid, "x") != x0   # the input moved the runner
    end = await c.expect(codec.Event, timeout=15)
    [[kind, reason, rows]] = end.events
    assert kind == codec.EV_MATCH_END and reason == "time"
    assert await c.closed() == 1000
    await wait_for(lambda: "tag-ws" in lobby.results)
    check_tag_result(rows, lobby.results["tag-ws"], 7)


async def test_tag_plays_to_its_result_over_sockjs(make_node, lobby):
    n = await make_node(lobby_url=lobby.url, **TAG_FAST, **QUICK)
    c = XhrPolling(n, "tag-over-sockjs-0123456789abcdef")
    await c.open()
    await c.send(codec.Join(token("tag-sj", 8, "Poller", mode="tag", bots=2)))
    w = await c.expect(codec.Welcome)
    assert w.config["game"] == "tag"
    await c.expect(codec.Keyframe)
    await c.send(codec.Input(1, (0, 100)))   # (mx, my): tag's input spec
    end = await c.expect(codec.Event, polls=400)
    [[kind, reason, rows]] = end.events
    assert kind == codec.EV_MATCH_END and reason == "time"
    for _ in range(20):
        if c.close_frame:
            break
        await c.poll()
    assert c.close_frame == [1000, "Normal closure"]
    await wait_for(lambda: "tag-sj" in lobby.results)
    check_tag_result(rows, lobby.results["tag-sj"], 8)


async def test_welcome_config_is_the_games_keys_then_the_rooms(make_node):
    n = await make_node(games=GAMES)
    c = await n.player(token("pr1", 1, "Ann", mode="probe"))
    config = c.welcome.config
    assert config["probe"] is True                       # the game's own key
    assert config["mode"] == "probe" and config["sim_hz"] == 30  # the room's win
    assert config["game"] == "probe" and config["match_id"] == "pr1"
    assert config["max_players"] == 4 and config["reconnect_window"] == 2
    assert config["schema"] == PROBE_GAME.schema()


async def test_inputs_follow_the_games_spec_clamped_and_wrapped(make_node):
    """Probe's input is (a in 0..10, b in -5..5 wrapping); its entity shows what it got."""
    n = await make_node(games=GAMES)
    c = await n.player(token("pr2", 1, "Ann", mode="probe"))
    pid = c.welcome.player_id
    for (a, b), want in [((50, 7), (10, -4)), ((-3, -6), (0, 5)), ((4, -5), (4, -5))]:
        seq = await c.input(a=a, b=b)
        for _ in range(60):
            await c.expect(codec.Delta)
            if c.ack() == seq:
                break
        assert c.entities[pid][0] == KIND_PROBE
        assert (c.field(pid, "a"), c.field(pid, "b")) == want
    odd = await n.player(token("pr2", 2, "Odd", mode="probe"))
    await odd.input(1, 2, 3, 4)   # the Arena's arity is not probe's
    assert await odd.closed() == 4001
    await assert_unaffected(c)


async def test_game_events_pass_untouched(make_node):
    """Every code 16..127 a game declares reaches the client as the game emitted it."""
    n = await make_node(games=GAMES, time_scale=4.0)
    c = await n.player(token("pr3", 1, "Ann", mode="probe"))
    seen: dict[int, list] = {}
    deadline = asyncio.get_running_loop().time() + 20
    while len(seen) < len(EVENT_CODES):
        assert asyncio.get_running_loop().time() < deadline, sorted(set(EVENT_CODES) - set(seen))
        m = await c.expect(codec.Delta)
        for e in m.events:
            if e[0] >= 16:
                assert e == [EVENT_CODES[e[1] % len(EVENT_CODES)], e[1]]  # [code, tick]
                seen[e[0]] = e
    assert sorted(seen) == list(EVENT_CODES)


async def test_results_carry_the_games_stats_columns(make_node, lobby):
    n = await make_node(games=GAMES, lobby_url=lobby.url, time_scale=4.0, **QUICK)
    c = await n.player(token("pr4", 5, "Ann", mode="probe-short", bots=1))
    for _ in range(3):
        await c.input(a=3, b=0)
    end = await c.expect(codec.Event, timeout=10)
    [[kind, reason, rows]] = end.events
    assert kind == codec.EV_MATCH_END and reason == "time"
    me = next(r for r in rows if r[1] == 5)
    assert me[2:6] == ["Ann", 3, 1, False] and me[6] == 3   # score a=3, placement 1, 3 inputs
    await wait_for(lambda: "pr4" in lobby.results)
    sent = lobby.results["pr4"]
    assert sent["game"] == "probe" and sent["mode"] == "probe-short"
    assert [p["stats"] for p in sent["players"]] == [{"inputs": r[6]} for r in rows]


async def test_a_game_that_fails_to_start_is_4018_and_logged(make_node, caplog):
    n = await make_node(games=GAMES)
    calm = await n.player(token("calm", 99, "Calm"))
    caplog.set_level(logging.ERROR, logger="game_server")
    for user in (1, 2):   # every join of that match, not only the first
        c = await n.connect()
        await c.send(codec.Join(token("bad", user, mode="broken")))
        assert await c.closed() == 4018 and c.error == codec.Error(4018, "Game failed")
    assert "bad" not in n.node.rooms
    failures = [r for r in caplog.records if "failed to start" in r.getMessage()]
    assert len(failures) == 2 and all(r.exc_info for r in failures)   # with the traceback
    assert "broken on purpose" in caplog.text and "'broken'" in caplog.text
    await assert_unaffected(calm)
    again = await n.player(token("fine", 3, mode="probe"))   # the node still seats
    assert again.welcome.config["game"] == "probe"


async def test_a_mode_this_node_does_not_run_is_4010(make_node):
    n = await make_node(games=PROBE)
    c = await n.connect()
    await c.send(codec.Join(token("ar", 1, mode="sprint")))   # registered elsewhere, not here
    assert await c.closed() == 4010 and c.error == codec.Error(4010, "Invalid token")
    ok = await n.player(token("pr", 2, mode="probe"))
    assert isinstance(ok, Client) and ok.welcome.config["mode"] == "probe"


async def test_heartbeats_list_the_nodes_modes(make_node, lobby):
    n = await make_node(games=GAMES, lobby_url=lobby.url, heartbeat_interval=0.1)
    await wait_for(lambda: lobby.heartbeats)
    modes = lobby.heartbeats[-1]["modes"]
    assert modes == list(n.node.registry.modes)
    assert modes == ["arena", "sprint", "duel", "probe", "probe-short", "broken"]
