"""`make test-fast` leaves out every browser and scale test, whatever its file says:
tests/conftest.py marks them by folder."""

from __future__ import annotations

from pathlib import Path

from tests import conftest


class Item:
    def __init__(self, path: Path) -> None:
        self.path, self.markers = path, []

    def add_marker(self, name: str) -> None:
        self.markers.append(name)


def test_browser_and_scale_folders_are_marked_by_folder() -> None:
    items = {name: Item(conftest.HERE / name / "test_x.py")
             for name in ("browser", "scale", "engine", "lobby")}
    outside = Item(Path("/elsewhere/browser/test_x.py"))
    conftest.pytest_collection_modifyitems([*items.values(), outside])  # type: ignore[list-item]
    assert {name: item.markers for name, item in items.items()} == {
        "browser": ["browser"], "scale": ["scale", "slow"], "engine": [], "lobby": []}
    assert outside.markers == []


def test_every_browser_and_scale_file_exists_where_the_rule_looks() -> None:
    for folder in conftest.BY_FOLDER:
        assert list((conftest.HERE / folder).glob("test_*.py")), folder
