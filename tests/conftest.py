"""Markers by folder, so that a new file cannot forget them: every test under
`tests/browser/` is `browser`, every test under `tests/scale/` is `scale` and `slow`.
`make test-fast` runs `-m "not browser and not scale and not slow"`."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
BY_FOLDER = {"browser": ("browser",), "scale": ("scale", "slow")}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(HERE).parts[0]
        except ValueError:
            continue
        for name in BY_FOLDER.get(folder, ()):
            item.add_marker(name)
