"""The load test's own arithmetic and argument checks (no servers)."""

import math
import pickle
import random

import pytest

from engine import codec
from engine.registry import registry
from game_server.metrics import Metrics
from loadtest import cli, metrics
from loadtest.bot import effective_patch_hz, host_allowed
from loadtest.stats import Group, Histogram
from loadtest.worker import is_slow


def test_histogram_percentiles_match_sorted_samples_within_a_bucket():
    rng = random.Random(7)
    samples = [rng.lognormvariate(-3, 0.8) for _ in range(20_000)]
    h = Histogram()
    for s in samples:
        h.record(s)
    ordered = sorted(samples)
    for q in (0.5, 0.95, 0.99):
        exact = ordered[math.ceil(q * len(ordered)) - 1]
        assert h.percentile(q) == pytest.approx(exact, rel=0.011)
    assert h.max == max(samples)
    assert h.summary()["count"] == len(samples)


def test_record_many_is_record_of_each():
    rng = random.Random(3)
    samples = [rng.lognormvariate(-3, 1.5) for _ in range(5_000)] + [0.0, 1e-7, 1e-6]
    one, many = Histogram(), Histogram()
    for s in samples:
        one.record(s)
    many.record_many(samples[:100])
    many.record_many([])
    many.record_many(samples[100:])
    assert many.buckets == one.buckets and (many.count, many.max) == (one.count, one.max)
    assert math.isclose(many.total, one.total, rel_tol=1e-12)


def test_histograms_merge_and_cross_processes():
    a, b, both = Histogram(), Histogram(), Histogram()
    for i in range(1, 1000):
        (a if i % 3 else b).record(i / 1000)
        both.record(i / 1000)
    a.merge(pickle.loads(pickle.dumps(b)))
    assert a.summary() == both.summary()


def test_group_take_resets_and_keeps_the_objects():
    g = Group()
    g.counters["frames"] += 3
    g.hist["rtt"].record(0.002)
    taken = g.take()
    assert taken.counters["frames"] == 3 and taken.hist["rtt"].count == 1
    assert g.counters["frames"] == 0 and g.hist["rtt"].count == 0


def test_node_metrics_parse_and_tick_quantile():
    m = Metrics()
    for _ in range(98):
        m.tick_seconds.observe(0.0004)      # bucket (0.00025, 0.0005]
    m.tick_seconds.observe(0.02)            # bucket (0.01, 0.025]
    m.tick_seconds.observe(0.02)
    m.overruns = 5
    text = m.render(lambda: {"rooms": 3, "players_by_transport": {"websocket": 7, "xhr": 2},
                             "seats": 9, "draining": False, "outbox_pending": 0})
    sample = metrics.NodeSample.from_text(0.0, text)
    assert (sample.rooms, sample.players, sample.overruns, sample.tick_count) == (3, 9, 5, 100)
    p50, bound50 = metrics.histogram_quantile(0.5, sample.tick_buckets)
    assert bound50 == 0.0005 and 0.00025 <= p50 <= 0.0005
    p99, bound99 = metrics.histogram_quantile(0.99, sample.tick_buckets)
    assert bound99 == 0.025 and 0.01 < p99 <= 0.025
    later = metrics.NodeSample.from_text(1.0, text)
    assert metrics.histogram_quantile(0.99, metrics.bucket_diff(later, sample)) is None  # no new ticks


def test_proc_usage_of_this_process():
    import os
    cpu, rss = metrics.proc_usage(os.getpid())
    assert cpu > 0 and rss > 1_000_000


def test_slow_bots_are_spread_evenly():
    assert sum(is_slow(i, 0.1) for i in range(200)) == 20
    assert sum(is_slow(i, 0.0) for i in range(200)) == 0
    assert all(is_slow(i, 1.0) for i in range(10))


def test_effective_patch_rate_follows_the_engine_rounding():
    assert effective_patch_hz({"sim_hz": 30, "patch_hz": 20}) == 15
    assert effective_patch_hz({"sim_hz": 60, "patch_hz": 20}) == 20
    assert effective_patch_hz({"sim_hz": 20, "patch_hz": 20}) == 20


def test_hosts():
    assert host_allowed("http://127.0.0.1:8001", frozenset({"127.0.0.1"}))
    assert not host_allowed("http://example.com:8001", frozenset({"127.0.0.1"}))


@pytest.mark.parametrize("argv, message", [
    (["--lobby", "http://example.com"], "not loopback"),
    (["--lobby", "ftp://127.0.0.1"], "not an http"),
    (["--lobby", "http://127.0.0.1", "--bots", "0"], "--bots must be in"),
    (["--lobby", "http://127.0.0.1", "--bots", "20001"], "--bots must be in"),
    (["--lobby", "http://127.0.0.1", "--transport", "carrier-pigeon"], "unknown transport"),
    (["--lobby", "http://127.0.0.1", "--nice", "20"], "--nice must be in"),
    (["--lobby", "http://127.0.0.1", "--target", "speed=1"], "unknown target"),
    (["--lobby", "http://127.0.0.1", "--node-metrics", "http://10.1.2.3/metrics"], "not loopback"),
])
def test_bad_arguments_are_refused(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        cli.parse_args(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_named_hosts_and_transport_lists_are_accepted():
    args = cli.parse_args(["--lobby", "http://lobby.test:8000", "--allow-host", "lobby.test",
                           "--transport", "xhr-polling,xhr-streaming", "--bots", "3", "--processes", "8"])
    assert args.transports == ("xhr-polling", "xhr-streaming")
    assert args.processes == 3  # never more processes than bots
    assert "lobby.test" in args.allowed_hosts


def test_bot_event_loop_is_uvloop_when_installed_unless_forced(monkeypatch):
    from loadtest import worker

    monkeypatch.delenv("LOADTEST_LOOP", raising=False)
    assert worker.event_loop_name() == ("uvloop" if worker.uvloop is not None else "asyncio")
    monkeypatch.setenv("LOADTEST_LOOP", "asyncio")
    assert worker.event_loop_name() == "asyncio"
    monkeypatch.setattr(worker, "uvloop", None)
    monkeypatch.delenv("LOADTEST_LOOP")
    assert worker.event_loop_name() == "asyncio"


def test_bot_cost_counts_only_the_seconds_near_the_peak():
    timeline = [{"in_match": 10, "cpu": {"bots": 90.0}},    # ramp: left out
                {"in_match": 100, "cpu": {"bots": 20.0}},
                {"in_match": 95, "cpu": {"bots": 19.0}},
                {"in_match": 100},                          # no CPU sample: left out
                {"in_match": 0, "cpu": {"bots": 5.0}}]
    assert cli.bot_cost(timeline) == round(10 * (20.0 + 19.0) / (100 + 95), 3)
    assert cli.bot_cost([]) is None
    assert cli.bot_cost([{"in_match": 0, "cpu": {"bots": 3.0}}]) is None


def test_scenario_modes_come_from_the_registry(capsys):
    from loadtest import scenarios

    modes = registry().modes
    first = next(iter(modes))
    assert scenarios.default_mode() == first
    game = modes[first][0]
    short = scenarios.default_mode(short_matches=True)
    assert modes[short][0] is game
    assert all(modes[short][1].config.time_limit <= m.config.time_limit for m in game.modes.values())
    with pytest.raises(SystemExit) as exit_:
        scenarios.main(["c1k", "--small", "--mode", "no-such-mode"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "unknown mode 'no-such-mode'" in err and all(name in err for name in modes)


def _bot_with_state():
    import asyncio

    from loadtest.bot import Bot, BotConfig, _Match

    groups = {"normal": Group(), "slow": Group()}
    bot = Bot(0, BotConfig("http://127.0.0.1:1"), None, groups, asyncio.Event())
    m = bot.match = _Match(t_queue=0.0, t_connect=0.0)
    assert bot._on_message(codec.encode(codec.Keyframe(10, 0, {1: (1, 5, 6), 2: (2, 7)}, [])), m) is codec.Keyframe
    return bot, m, groups["normal"]


def _delta(tick, base, added=None, removed=(), updated=None, events=()):
    return codec.encode_delta(tick, base, 0, added or {}, list(removed), updated or {}, list(events))


def test_deltas_with_and_without_events_take_the_quick_path_and_apply():
    from loadtest.bot import plain_delta

    ended = [codec.EV_MATCH_END, "time", []]
    for events in ([], [[17, 1, 2]], [ended]):
        assert plain_delta(_delta(11, 10, events=events)) is not None
    for bad in ([[]], [["x"]], [5], 7):  # codec.decode_any then says how it is bad
        assert plain_delta(codec.encode_delta(11, 10, 0, {}, [], {}, bad)) is None
    bot, m, g = _bot_with_state()
    assert bot._on_message(_delta(11, 10, updated={1: [2, 60]}, events=[[17, 1]]), m) is codec.Delta
    assert bot._on_message(_delta(12, 11, {3: [1, 0, 0]}, [2], {1: [1, 50]}, [ended]), m) is codec.Delta
    assert m.entities == {1: (1, 50, 60), 3: (1, 0, 0)} and m.state_tick == 12
    assert m.ended and g.counters["matches_completed"] == 1 and not g.errors


@pytest.mark.parametrize("updated", [{9: [1, 5]}, {1: [0, 5]}, {1: [3, 5]}, {1: [1]}, {1: [True, 5]}, {1: 5}])
def test_a_delta_that_does_not_apply_is_an_error_and_waits_for_a_keyframe(updated):
    bot, m, g = _bot_with_state()
    assert bot._on_message(_delta(11, 10, updated=updated), m) is codec.Delta
    assert g.errors == {"delta does not apply": 1}
    assert m.state_tick == -1
    assert bot._on_message(_delta(12, 11, updated={1: [1, 9]}), m) is codec.Delta  # base unknown now
    assert g.counters["delta_base_mismatch"] == 1 and m.entities[1][1] == 5


def test_the_bots_input_bytes_are_the_codecs():
    from loadtest.bot import _pack_input

    for msg in (codec.Input(1, ()), codec.Input(70_000, (-100, 100, 3142, 1)), codec.Input((1 << 32) - 1, (0,))):
        assert _pack_input(msg.seq, msg.values) == codec.encode(msg)
