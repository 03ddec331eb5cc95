"""`python -m loadtest.scenarios NAME [--small]`: the documented load scenarios, each on a
fresh lobby and game node that this command starts and stops itself.

    python -m loadtest.scenarios c1k           # 1,000 websocket bots, 16-player rooms, 60 s
    python -m loadtest.scenarios polling       # 200 xhr-polling + 200 xhr-streaming bots
    python -m loadtest.scenarios churn         # 500 bots joining and leaving, then a leak check
    python -m loadtest.scenarios slow-client   # 10% of the bots stop reading
    python -m loadtest.scenarios c1k --small   # the same with a few bots for a few seconds
    python -m loadtest.scenarios c1k --small --mode tag   # any registered mode (any game)
    python -m loadtest.scenarios rolling-deploy   # 2 nodes restarted in turn under load
                                                  # (PostgreSQL + Redis: loadtest/rolling_deploy.py)

The stack: `manage.py migrate` on a temporary SQLite file, the lobby and one node
(`python -m game_server`) on free loopback ports, with fresh secrets. The lobby runs as
deployed (`--lobby-server uvicorn`, the default: `lobby.asgi` in one process, its
background matcher, the event stream), and the bots wait for their seat on the stream as
the browser does; `--lobby-server gunicorn` (`lobby.wsgi`, `--lobby-workers` x 4 threads,
matcher passes in GET /api/queue) or `runserver` (`manage.py runserver`) have no stream,
and the bots poll GET /api/queue every `--poll-interval` there (`--lobby-wait poll` makes
them poll on uvicorn too). Logs and the
database stay in a temporary directory (printed; `--keep` keeps it). Then
`python -m loadtest` runs against it with the scenario's flags and targets, and writes
`reports/<name>.json` (+ .png, .html). The bot workers run at nice `BOTS_NICE` (10): the
node and the lobby are what is measured. Extra flags after `--` go to `python -m loadtest`
(they override the scenario's, `--nice 0` too).

The bots queue for `--mode` (any mode of the game registry, `engine.registry`; default its
first, or for `churn` the shortest match of that mode's game); the lobby gets it as
`MATCH_MODE`. The lobby, the node and the bots read the same registry (`GAMES`).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine import auth
from engine.registry import registry
from loadtest import cli
from loadtest.procs import free_port, listen_socket, start_node, wait_http
from loadtest.seating import WAITS

ROOT = Path(__file__).resolve().parent.parent
NODE_ID = "node-1"
LOOPBACK_ADDRESSES = "127.0.0.1,::1"  # where the bots come from


@dataclass(frozen=True)
class Scenario:
    summary: str
    args: list[str]                         # flags of `python -m loadtest`
    targets: dict[str, float]
    small_args: list[str]
    lobby_env: dict[str, str] = field(default_factory=dict)
    node_env: dict[str, str] = field(default_factory=dict)
    short_matches: bool = False             # default mode: the shortest of the first game


# MATCH_SIZE caps every mode's match size (the mode's max_players).
_BASE_LOBBY = {"MATCH_SIZE": "16", "MATCH_MAX_WAIT": "5"}
_SMALL_LOBBY = {"MATCH_SIZE": "4", "MATCH_MAX_WAIT": "1"}

SCENARIOS: dict[str, Scenario] = {
    "c1k": Scenario(
        "1,000 bots over the raw websocket in 16-player rooms for 60 s",
        ["--bots", "1000", "--ramp", "30", "--duration", "60", "--transport", "websocket",
         "--poll-interval", "1.0"],
        {"frames_ratio": 0.999, "max_errors": 0, "tick_p99_ms": 10, "ack_p99_intervals": 2,
         "acked_ratio": 0.99},
        ["--bots", "8", "--ramp", "1", "--duration", "6", "--transport", "websocket"],
        lobby_env=_BASE_LOBBY),
    "polling": Scenario(
        "200 bots over xhr-polling and 200 over xhr-streaming (SockJS) for 60 s",
        ["--bots", "400", "--ramp", "20", "--duration", "60", "--transport", "xhr-polling,xhr-streaming",
         "--poll-interval", "1.0"],
        {"frames_ratio": 0.999, "max_errors": 0, "tick_p99_ms": 10, "ack_p99_intervals": 3,
         "acked_ratio": 0.99},
        ["--bots", "8", "--ramp", "1", "--duration", "6", "--transport", "xhr-polling,xhr-streaming"],
        lobby_env=_BASE_LOBBY),
    "churn": Scenario(
        "500 bots in short matches (the game's shortest mode), leaving after 7-22 s and queueing "
        "again, for 120 s; then the node must drop to zero rooms and players",
        ["--bots", "500", "--ramp", "20", "--duration", "120", "--leave-after", "15",
         "--settle", "60", "--poll-interval", "1.0"],
        {"max_errors": 0, "frames_ratio": 0.999, "acked_ratio": 0.99, "node_idle_after": 1},
        ["--bots", "8", "--ramp", "1", "--duration", "8", "--leave-after", "3", "--settle", "15"],
        lobby_env=_BASE_LOBBY,
        node_env={"ARENA_EMPTY_ROOM_TIMEOUT": "5"}, short_matches=True),
    "slow-client": Scenario(
        "200 websocket bots of which 10% stop reading 3 s into their match for 30 s; the node "
        "must drop those (4020) and the others must not notice",
        ["--bots", "200", "--ramp", "10", "--duration", "60", "--transport", "websocket",
         "--slow-fraction", "0.1", "--slow-after", "3", "--slow-stall", "30"],
        {"frames_ratio": 0.999, "max_errors": 0, "ack_p99_intervals": 2, "acked_ratio": 0.99,
         "slow_dropped": 1},
        ["--bots", "8", "--ramp", "1", "--duration", "10", "--transport", "websocket",
         "--slow-fraction", "0.25", "--slow-after", "1", "--slow-stall", "7"],
        lobby_env=_BASE_LOBBY,
        node_env={"ARENA_SOCKET_SEND_BUFFER": "16384"}),
}


def default_mode(short_matches: bool = False) -> str:
    """The registry's first mode; with `short_matches`, the mode of that game with the
    shortest `time_limit`."""
    modes = registry().modes
    first = next(iter(modes))
    if not short_matches:
        return first
    game = modes[first][0]
    return min(game.modes.values(), key=lambda mode: mode.config.time_limit).name


@dataclass
class Stack:
    """A lobby and a node on free loopback ports, for one scenario run."""

    workdir: Path
    lobby_url: str
    node_url: str
    lobby: subprocess.Popen
    node: subprocess.Popen


LOBBY_SERVERS = ("uvicorn", "gunicorn", "runserver")


@contextlib.contextmanager
def stack(lobby_env: dict[str, str], node_env: dict[str, str], *, lobby_server: str = "uvicorn",
          lobby_workers: int = 2, keep: bool = False) -> Iterator[Stack]:
    """Start a lobby and a node (and stop them, whatever happens)."""
    workdir = Path(tempfile.mkdtemp(prefix="loadtest-"))
    # gunicorn and uvicorn get a socket bound here (no port race: loadtest.procs); the node
    # retries another port if its own was taken, and is ready when /health names NODE_ID
    lobby_sock = listen_socket() if lobby_server in ("gunicorn", "uvicorn") else None
    lobby_port = lobby_sock.getsockname()[1] if lobby_sock else free_port()
    lobby_url = f"http://127.0.0.1:{lobby_port}"
    node_secret = secrets.token_hex(16)
    env = {**os.environ, "DATABASE_URL": f"sqlite:///{workdir / 'lobby.sqlite3'}",
           "SEAT_SECRET": secrets.token_hex(16), "ALLOWED_HOSTS": "127.0.0.1,localhost", "DEBUG": "0",
           "LOG_LEVEL": "WARNING", "PYTHONUNBUFFERED": "1"}
    env.pop("NODE_SECRET", None)
    env.pop("NODE_KEY", None)
    # production-style secrets (docs/deploy.md, "Secrets"): the lobby holds the master
    # NODE_SECRET, the node only its own key derived from it. Every bot comes from
    # loopback: exempt it from the lobby's guest limit and the node's per-address caps.
    cli_env = {**env, "SECRET_KEY": secrets.token_urlsafe(50), "NODE_SECRET": node_secret,
               "GUEST_ALLOWLIST": LOOPBACK_ADDRESSES, **lobby_env}
    node_env = {**env, "NODE_KEY": auth.derive_node_key(node_secret, NODE_ID),
                "ARENA_ADMISSION_EXEMPT": LOOPBACK_ADDRESSES, **node_env}
    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=cli_env,
                   check=True, timeout=120)
    if lobby_server == "gunicorn":
        lobby_cmd = [sys.executable, "-m", "gunicorn", "lobby.wsgi", "-b", f"fd://{lobby_sock.fileno()}",
                     "-w", str(lobby_workers), "--threads", "4", "--keep-alive", "5", "--timeout", "120",
                     "--backlog", "2048", "--log-level", "warning"]
    elif lobby_server == "uvicorn":  # lobby.realtime.server.uvicorn_argv's flags (loadtest
        # may not import lobby: tests/test_layering.py), with gunicorn's backlog above
        lobby_cmd = [sys.executable, "-m", "uvicorn", "lobby.asgi:application",
                     "--fd", str(lobby_sock.fileno()), "--lifespan", "on", "--no-access-log",
                     "--timeout-graceful-shutdown", "3", "--backlog", "2048",
                     "--log-level", "warning"]
    else:
        lobby_cmd = [sys.executable, "manage.py", "runserver", "--noreload", f"127.0.0.1:{lobby_port}"]

    def node_cmd(port: int) -> list[str]:
        return [sys.executable, "-m", "game_server", "--host", "127.0.0.1", "--port", str(port),
                "--node-id", NODE_ID, "--public-url", f"http://127.0.0.1:{port}",
                "--lobby-url", lobby_url, "--outbox", str(workdir / "outbox.sqlite3"),
                "--log-level", "WARNING"]
    procs: list[subprocess.Popen] = []
    try:
        lobby_log, node_log = workdir / "lobby.log", workdir / "node.log"
        with open(lobby_log, "w") as out:
            procs.append(subprocess.Popen(lobby_cmd, cwd=ROOT, env=cli_env, stdout=out, stderr=subprocess.STDOUT,
                                          pass_fds=(lobby_sock.fileno(),) if lobby_sock else ()))
        if lobby_sock is not None:
            lobby_sock.close()  # gunicorn holds it now
        wait_http(lobby_url + "/api/csrf", procs[0], "the lobby", lobby_log)
        node, node_port = start_node(node_cmd, NODE_ID, log_path=node_log, env=node_env, cwd=ROOT)
        procs.append(node)
        node_url = f"http://127.0.0.1:{node_port}"
        time.sleep(0.5)  # the node's first heartbeat registers it at the lobby
        yield Stack(workdir, lobby_url, node_url, procs[0], procs[1])
    finally:
        if lobby_sock is not None:
            lobby_sock.close()
        for proc in reversed(procs):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in reversed(procs):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)


#: The bot workers' os.nice() increment: the node and the lobby are what a scenario measures,
#: and on the machine they share the bots take what those leave instead of an equal share
#: (`-- --nice 0` for an equal share).
BOTS_NICE = 10


def loadtest_argv(name: str, small: bool, st: Stack, report: Path, extra: list[str], mode: str) -> list[str]:
    sc = SCENARIOS[name]
    argv = ["--lobby", st.lobby_url, "--node-metrics", st.node_url + "/metrics",
            "--watch-pid", f"node={st.node.pid}", "--watch-pid", f"lobby={st.lobby.pid}",
            "--report", str(report), "--mode", mode, "--nice", str(BOTS_NICE),
            *(sc.small_args if small else sc.args)]
    argv += [f"--target={k}={v:g}" for k, v in sc.targets.items()]
    return argv + extra


def _pairs(p: argparse.ArgumentParser, items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not key or not sep:
            p.error(f"expected KEY=VALUE, got {item!r}")
        out[key] = value
    return out


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rolling-deploy"]:   # its own stack: two nodes on PostgreSQL and Redis
        from loadtest import rolling_deploy

        return rolling_deploy.main(argv[1:])
    extra: list[str] = []
    if "--" in argv:
        cut = argv.index("--")
        argv, extra = argv[:cut], argv[cut + 1:]
    p = argparse.ArgumentParser(prog="python -m loadtest.scenarios", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(f"{n}: {s.summary}" for n, s in SCENARIOS.items()))
    p.add_argument("name", choices=sorted(SCENARIOS))
    p.add_argument("--small", action="store_true", help="a few bots for a few seconds (the tests)")
    p.add_argument("--mode", default=None,
                   help="the mode the bots queue for, any registered one (default: the registry's "
                        "first; churn: the shortest of its game)")
    p.add_argument("--report", type=Path, default=None, help="default reports/<name>[-small].json")
    p.add_argument("--lobby-server", choices=LOBBY_SERVERS, default="uvicorn",
                   help="uvicorn: as deployed, one ASGI process with the background matcher and "
                        "the event stream; gunicorn: WSGI, --lobby-workers x 4 threads, matcher "
                        "passes in GET /api/queue; runserver: Django's (default uvicorn)")
    p.add_argument("--lobby-workers", type=int, default=2, help="gunicorn worker processes")
    p.add_argument("--lobby-wait", choices=WAITS, default="auto",
                   help="how the bots wait for their seat: auto (the event stream where the lobby "
                        "has one, else GET /api/queue polls), events, poll (default auto)")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory (logs, DB)")
    p.add_argument("--lobby-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra lobby environment (e.g. DATABASE_URL=postgres://...), repeatable")
    p.add_argument("--node-env", action="append", default=[], metavar="KEY=VALUE",
                   help="extra node environment (e.g. ARENA_MAX_SEND_QUEUE=16), repeatable")
    args = p.parse_args(argv)
    sc = SCENARIOS[args.name]
    modes = registry().modes
    mode = args.mode or default_mode(sc.short_matches)
    if mode not in modes:
        p.error(f"unknown mode {mode!r}; the registered modes: {', '.join(modes)}")
    report = args.report or ROOT / "reports" / f"{args.name}{'-small' if args.small else ''}.json"
    lobby_env = {**sc.lobby_env, "MATCH_MODE": mode, **(_SMALL_LOBBY if args.small else {}),
                 **_pairs(p, args.lobby_env)}
    node_env = {**sc.node_env, **_pairs(p, args.node_env)}
    print(f"scenario {args.name}{' (small)' if args.small else ''}, mode {mode} "
          f"(game {modes[mode][0].name}): {sc.summary}", file=sys.stderr)
    with stack(lobby_env, node_env, lobby_server=args.lobby_server, lobby_workers=args.lobby_workers,
               keep=args.keep) as st:
        print(f"lobby {st.lobby_url} ({args.lobby_server}, pid {st.lobby.pid}), node {st.node_url} (pid {st.node.pid}), "
              f"logs in {st.workdir}", file=sys.stderr)
        return cli.main(loadtest_argv(args.name, args.small, st, report,
                                      ["--lobby-wait", args.lobby_wait, *extra], mode))


if __name__ == "__main__":
    sys.exit(main())
