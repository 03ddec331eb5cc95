"""The load test's outputs: the JSON report, the summary table, a PNG and an HTML page.

The JSON is the record (every figure the tool measured, with the command line); the
table, the PNG (matplotlib, headless) and the HTML page (the PNG inlined, the table, the
targets) are views of it.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from loadtest.stats import Group

#: keys a complete report has (tests/loadtest checks them)
REPORT_KEYS = ("tool", "command", "config", "started_at", "elapsed_s", "bots", "timeline",
               "summary", "groups", "node", "processes", "machine", "targets", "per_bot")
SUMMARY_KEYS = ("time_to_seat_ms", "queue_wait_ms", "input_ack_ms", "input_ack_patch_intervals",
                "state_interval_ms", "rtt_ms", "lobby_request_ms", "frames", "bytes",
                "matches", "closes", "errors", "error_count")


def group_summary(g: Group, patch_hz: float, elapsed: float, bots: int) -> dict:
    c = g.counters
    received, expected = c["frames"], c["frames_expected"]
    ack = g.hist["input_ack"].summary()
    interval_ms = 1000.0 / patch_hz if patch_hz else None
    # inputs that waited for an ack until it came or was given up (MAX_PENDING_INPUTS):
    # not those in flight when the bot stopped waiting (match over, left, inactive player)
    awaited = c["inputs_awaiting_ack"] - c["inputs_ack_abandoned"]
    ack_intervals = ({k: (round(v / interval_ms, 3) if isinstance(v, float) else v)
                      for k, v in ack.items() if k != "count"} if interval_ms else {})
    return {
        "time_to_seat_ms": g.hist["time_to_seat"].summary(),
        "queue_wait_ms": g.hist["queue_wait"].summary(),
        "join_to_state_ms": g.hist["join_to_state"].summary(),
        "input_ack_ms": ack,
        "input_ack_patch_intervals": ack_intervals,
        "state_interval_ms": g.hist["state_interval"].summary(),
        "rtt_ms": g.hist["rtt"].summary(),
        "lobby_request_ms": g.hist["lobby_request"].summary(),
        "requeue_wait_ms": g.hist["requeue_wait"].summary(),
        "bot_loop_lag_ms": g.hist["bot_loop_lag"].summary(),
        # `moved` followed: last state frame on the old node -> first on the new one
        "move_gap_ms": g.hist["move_gap"].summary(),
        "frames": {
            "received": received, "expected": expected,
            "ratio": round(received / expected, 5) if expected else None,
            "expected_by_tick": c["frames_expected_by_tick"],
            "tick_gaps": c["tick_gaps"], "keyframes": c["keyframes"],
            "delta_base_mismatch": c["delta_base_mismatch"],
            "patch_hz": patch_hz,
        },
        "bytes": {
            "in": c["bytes_in"], "out": c["bytes_out"],
            "in_per_bot_per_s": round(c["bytes_in"] / bots / elapsed, 1) if bots and elapsed else None,
            "out_per_bot_per_s": round(c["bytes_out"] / bots / elapsed, 1) if bots and elapsed else None,
        },
        "brains": {"game": c["brain_game"], "generic": c["brain_generic"]},
        "matches": {"connections": c["connections"], "started": c["matches_started"],
                    "completed": c["matches_completed"], "stalls": c["stalls"],
                    "queue_409_retries": c["queue_409"]},
        "inputs": {"sent": c["inputs_sent"], "awaiting_ack": c["inputs_awaiting_ack"],
                   "ack_abandoned": c["inputs_ack_abandoned"], "acked": ack["count"],
                   "acked_ratio": round(ack["count"] / awaited, 5) if awaited > 0 else None,
                   "never_acked": c["inputs_never_acked"],
                   "slots_skipped": c["input_slots_skipped"],
                   # the bots' achieved input rate while in a match (target: --input-hz)
                   "per_bot_per_match_s": round(c["inputs_sent"] * patch_hz / expected, 2)
                   if expected and patch_hz else None},
        "closes": dict(g.closes),
        "errors": dict(g.errors),
        "error_count": sum(g.errors.values()),
        "counters": dict(c),
    }


def check_targets(report: dict, targets: dict) -> list[dict]:
    """Compare the run with the targets given (any subset of the keys below)."""
    s = report["summary"]
    out = []

    def add(name: str, value, limit, ok: bool | None) -> None:
        out.append({"name": name, "value": value, "limit": limit, "pass": ok})

    if "frames_ratio" in targets:
        v = s["frames"]["ratio"]
        add("state frames received / expected", v, f">= {targets['frames_ratio']}",
            v is not None and v >= targets["frames_ratio"])
    if "max_errors" in targets:
        v = s["error_count"]
        add("errors (normal bots)", v, f"<= {targets['max_errors']}", v <= targets["max_errors"])
    if "tick_p99_ms" in targets:
        v = report["node"].get("tick_p99_bucket_ms")
        add("node tick p99 (histogram bucket bound, ms)", v, f"<= {targets['tick_p99_ms']}",
            v is not None and v <= targets["tick_p99_ms"])
    if "ack_p99_intervals" in targets:
        v = s["input_ack_patch_intervals"].get("p99")
        add("input-to-ack p99 (patch intervals)", v, f"<= {targets['ack_p99_intervals']}",
            v is not None and v <= targets["ack_p99_intervals"])
    if "acked_ratio" in targets:
        # a run whose bots get no acks (none at all, or no `ack` field in the schema) fails
        v = s["inputs"]["acked_ratio"]
        add("inputs acked / inputs awaiting an ack", v, f">= {targets['acked_ratio']}",
            v is not None and v >= targets["acked_ratio"])
    if "node_idle_after" in targets:
        end = report["node"].get("after_settle") or {}
        ok = end.get("rooms") == 0 and end.get("players") == 0
        add("node rooms/players after the run", f"{end.get('rooms')}/{end.get('players')}", "0/0", ok)
    if "slow_dropped" in targets:
        # The node counts its 4020 closes; a stalled bot often cannot see the close frame
        # (it sits behind the full buffer the node gives up on), so it sees 1006.
        slow = report["groups"].get("slow") or {}
        stalls = (slow.get("matches") or {}).get("stalls", 0)
        by_node = int(report["node"].get("closed_by_code", {}).get("4020", 0))
        seen = sum(n for cause, n in (slow.get("closes") or {}).items() if cause != "closed by bot")
        add("stalled bots closed by the node with 4020 (node count; bots saw a close)",
            f"{by_node}/{stalls} ({seen} seen)", "all stalled", stalls > 0 and by_node >= stalls)
    return out


# --- text ---------------------------------------------------------------------------------

def _fmt(h: dict, key: str) -> str:
    v = h.get(key)
    return "-" if v is None else f"{v:.1f}"


def summary_table(report: dict) -> str:
    s = report["summary"]
    lines = [f"load test: {report['bots']} bots, {report['config']['transport']}, "
             f"{report['elapsed_s']:.0f} s  ({report['command']})", ""]
    lines.append(f"{'measure (ms)':<34}{'count':>9}{'p50':>9}{'p95':>9}{'p99':>9}{'max':>9}")
    for label, key in (("time to seat (queue->state)", "time_to_seat_ms"),
                       ("queue wait (lobby)", "queue_wait_ms"),
                       ("input -> ack", "input_ack_ms"),
                       ("state interval (age)", "state_interval_ms"),
                       ("ping rtt", "rtt_ms"),
                       ("lobby request", "lobby_request_ms"),
                       ("match end -> queued again", "requeue_wait_ms"),
                       ("bots' own event loop lag", "bot_loop_lag_ms")):
        h = s[key]
        lines.append(f"{label:<34}{h['count']:>9}" + "".join(f"{_fmt(h, k):>9}" for k in ("p50", "p95", "p99", "max")))
    f = s["frames"]
    ratio = f"{100 * f['ratio']:.3f}%" if f["ratio"] is not None else "-"
    lines += ["", f"state frames: {f['received']} received / {f['expected']} expected ({ratio}) "
              f"at {f['patch_hz']:g}/s; tick gaps {f['tick_gaps']}, keyframes {f['keyframes']}, "
              f"delta base mismatch {f['delta_base_mismatch']}"]
    i = s["inputs"]
    lines.append(f"inputs: {i['sent']} sent, {i['per_bot_per_match_s']} per bot per match second; "
                 f"acked {i['acked']} of {i['awaiting_ack'] - i['ack_abandoned']} awaited "
                 f"(ratio {i['acked_ratio']}), {i['never_acked']} never acked")
    br = s["brains"]
    lines.append(f"brains: the game's {br['game']}, generic {br['generic']}")
    b = s["bytes"]
    lines.append(f"bytes: in {b['in']:,} out {b['out']:,} "
                 f"(per bot per s: in {b['in_per_bot_per_s']} out {b['out_per_bot_per_s']})")
    m = s["matches"]
    lines.append(f"connections {m['connections']}, matches started {m['started']}, completed {m['completed']}")
    lines.append(f"closes: {s['closes'] or '-'}")
    lines.append(f"errors ({s['error_count']}): {s['errors'] or '-'}")
    slow = report["groups"].get("slow")
    if slow and slow["matches"]["connections"]:
        lines.append(f"slow bots: stalls {slow['matches']['stalls']}, closes {slow['closes']}, "
                     f"errors {slow['errors'] or '-'}")
    n = report["node"]
    if n.get("scrapes"):
        lines.append(f"node: tick p50 {n.get('tick_p50_ms')} ms, p99 {n.get('tick_p99_ms')} ms "
                     f"(bucket <= {n.get('tick_p99_bucket_ms')}), overruns {n.get('overruns')}, "
                     f"queue drops {n.get('queue_drops')}, cpu {n.get('cpu_percent_avg')}%, "
                     f"rooms/players at end {n.get('end', {}).get('rooms')}/{n.get('end', {}).get('players')}")
    mc = report.get("machine") or {}
    lines.append(f"machine: {mc.get('cpus')} CPUs, load average {mc.get('loadavg_start')} at start, "
                 f"max {mc.get('loadavg_max')} (other work on the machine competes with the run); "
                 f"bots on the {mc.get('bot_event_loop', 'asyncio')} event loop, "
                 f"{mc.get('bot_cpu_ms_per_bot_second')} ms of bot CPU per bot per match second")
    for name, p in report["processes"].items():
        lines.append(f"process {name}: cpu avg {p.get('cpu_percent_avg')}% max {p.get('cpu_percent_max')}%, "
                     f"rss {p.get('rss_mb_start')} -> {p.get('rss_mb_after_ramp')} (ramp done) -> "
                     f"{p.get('rss_mb_end')} MB")
    if report["targets"]:
        lines.append("")
        for t in report["targets"]:
            mark = "PASS" if t["pass"] else "FAIL"
            lines.append(f"[{mark}] {t['name']}: {t['value']} (target {t['limit']})")
    return "\n".join(lines)


# --- pictures -------------------------------------------------------------------------------

def plot_png(report: dict, path: Path) -> None:
    """Players, latency percentiles, node tick time, throughput and CPU, memory: five
    stacked panels over the run."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tl = report["timeline"]
    t = [row["t"] for row in tl]
    fig, axes = plt.subplots(5, 1, figsize=(10, 13), sharex=True)
    ax = axes[0]
    ax.plot(t, [r["connected"] for r in tl], label="connected")
    ax.plot(t, [r["in_match"] for r in tl], label="in match")
    ax.plot(t, [r["queued"] for r in tl], label="queued (lobby)")
    if any(r.get("node_players") is not None for r in tl):
        ax.plot(t, [r.get("node_players") for r in tl], "--", label="node players (metrics)")
    ax.set_ylabel("bots")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_title(f"{report['bots']} bots, {report['config']['transport']}: {report['command'][:90]}",
                 fontsize=9)
    ax = axes[1]
    for key, style in (("ack_p50_ms", "-"), ("ack_p95_ms", "-"), ("ack_p99_ms", "-"),
                       ("state_age_p99_ms", ":"), ("bot_lag_p99_ms", "--")):
        ax.plot(t, [r.get(key) for r in tl], style, label=key.replace("_ms", "").replace("_", " "))
    ax.set_ylabel("ms")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[2]
    ax.plot(t, [r.get("tick_p50_ms") for r in tl], label="node tick p50")
    ax.plot(t, [r.get("tick_p99_ms") for r in tl], label="node tick p99")
    ax.set_ylabel("ms")
    ax.legend(loc="upper left", fontsize=8)
    ax = axes[3]
    ax.plot(t, [r.get("frames_per_s") for r in tl], label="state frames/s received")
    ax.set_ylabel("frames/s")
    ax2 = ax.twinx()
    for name in report["processes"]:
        ax2.plot(t, [(r.get("cpu") or {}).get(name) for r in tl], ":", label=f"cpu % {name}")
    ax2.set_ylabel("cpu %")
    lines1, labels1 = ax.get_legend_handles_labels()
    lines2, labels2 = ax2.get_legend_handles_labels()
    ax.legend(lines1 + lines2, labels1 + labels2, loc="upper left", fontsize=8)
    ax = axes[4]
    for name in report["processes"]:
        ax.plot(t, [(r.get("rss_mb") or {}).get(name) for r in tl], label=f"RSS MB {name}")
    ax.set_ylabel("MB")
    ax.legend(loc="upper left", fontsize=8)
    ax.set_xlabel("seconds since start")
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def write_html(report: dict, png: Path | None, path: Path) -> None:
    img = ""
    if png is not None and png.exists():
        img = f'<img alt="timeline" src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
    page = (
        "<!doctype html><meta charset=utf-8><title>load test report</title>"
        "<style>body{font-family:sans-serif;margin:2em}pre{background:#f4f4f4;padding:1em}</style>"
        f"<h1>Load test: {report['bots']} bots</h1>{img}"
        f"<h2>Summary</h2><pre>{html.escape(summary_table(report))}</pre>"
        f"<h2>Report (JSON)</h2><pre>{html.escape(json.dumps({k: v for k, v in report.items() if k not in ('timeline', 'per_bot')}, indent=1))}</pre>"
    )
    path.write_text(page)


def write_outputs(report: dict, json_path: Path, png: bool = True, html_page: bool = True) -> list[Path]:
    """report.json, and next to it report.png and report.html. Returns the files written."""
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1))
    written = [json_path]
    png_path = json_path.with_suffix(".png")
    if png:
        plot_png(report, png_path)
        written.append(png_path)
    if html_page:
        html_path = json_path.with_suffix(".html")
        write_html(report, png_path if png else None, html_path)
        written.append(html_path)
    return written
