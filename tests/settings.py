"""The test suite's lobby settings: development mode, then `lobby.settings`.

pytest-django reads the settings before any conftest runs, so the suite's environment is
set here, and the processes the tests start inherit it with `os.environ`:

- `ARENA_ENV=dev`: development mode (development secrets allowed);
- `GUEST_ALLOWLIST`: loopback is exempt from the guest limit, as a load-test machine would
  be (tests create many guests from 127.0.0.1); tests of the limit clear it;
- `REPLAY_REQUIRED=0`: a result's ratings are applied when it arrives (the tests post
  hand-made results without replays); tests of verification (tests/lobby/test_replays.py)
  turn it on.

A test that wants production behaviour starts its process without `ARENA_ENV` and with
`DJANGO_SETTINGS_MODULE=lobby.settings`.
"""

import os

os.environ.setdefault("ARENA_ENV", "dev")
os.environ.setdefault("GUEST_ALLOWLIST", "127.0.0.1,::1")
os.environ.setdefault("REPLAY_REQUIRED", "0")

from lobby.settings import *  # noqa: E402, F403
