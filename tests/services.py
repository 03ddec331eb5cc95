"""`need(condition, reason)`: the one rule for tests that need a service or a tool
(Redis, PostgreSQL, Chromium, Node.js, the built client) that may be missing.

On a developer machine a missing service skips the test, with the reason. In CI
(`CI=true`, which `.ci/run` sets) it fails it: CI provides every service, so a missing
one is a broken setup, not a reason to pass with part of the suite unrun.
"""

from __future__ import annotations

import os

import pytest

TRUE = {"1", "true", "yes", "on"}


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in TRUE


def need(condition: object, reason: str) -> None:
    """Go on if `condition` is true; else skip (fail under `CI=true`) with `reason`."""
    if condition:
        return
    if in_ci():
        pytest.fail(f"CI=true and {reason}", pytrace=False)
    pytest.skip(reason)
