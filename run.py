"""`make run`: the lobby and one game node on embedded defaults (SQLite, state in process).

Runs `manage.py migrate`, then the lobby (Django on uvicorn, ASGI: its event streams and
background matcher, docs/lobby.md "Serving"; port 8000) and a game node (port 8001)
as child processes, prints the URL to open, and stops both on Ctrl-C or when either dies.
Ports and hosts come from LOBBY_PORT, NODE_PORT and HOST. It runs in development mode
(`ARENA_ENV=dev`), so the development secrets are accepted.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent


def main() -> int:
    host = os.environ.get("HOST", "127.0.0.1")
    lobby_port = int(os.environ.get("LOBBY_PORT", "8000"))
    node_port = int(os.environ.get("NODE_PORT", "8001"))
    lobby_url = f"http://{host}:{lobby_port}"
    node_url = f"http://{host}:{node_port}"
    env = dict(os.environ)
    env.setdefault("ARENA_ENV", "dev")  # development secrets and DEBUG allowed
    env.setdefault("ALLOWED_HOSTS", "*")
    (ROOT / "var").mkdir(exist_ok=True)

    subprocess.run([sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env,
                   check=True)
    children = [
        subprocess.Popen([sys.executable, "-m", "uvicorn", "lobby.asgi:application", "--host", host,
                          "--port", str(lobby_port), "--lifespan", "on", "--no-access-log",
                          "--timeout-graceful-shutdown", "3"], cwd=ROOT, env=env),
        subprocess.Popen([sys.executable, "-m", "game_server", "--host", host, "--port", str(node_port),
                          "--node-id", "node-1", "--public-url", node_url, "--lobby-url", lobby_url],
                         cwd=ROOT, env=env),
    ]
    print(f"\n  realtime-arena is starting: open {lobby_url}/ and click 'Play as guest'\n"
          f"  (lobby {lobby_url}, game node {node_url}; Ctrl-C stops both)\n", flush=True)

    def stop(*_):
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()

    signal.signal(signal.SIGTERM, lambda *_: (stop(), sys.exit(0)))
    try:
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
