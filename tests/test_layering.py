"""The import rules of the folder table (../shared/DESIGN.md, README): the lobby and the
game nodes never import each other; what they share in Redis is named in `shared_keys`."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

NEVER = {
    "lobby": {"game_server", "loadtest"},
    "game_server": {"lobby", "loadtest"},
    "loadtest": {"game_server", "lobby"},
    "engine": {"game_server", "lobby", "loadtest", "django", "aiohttp", "asyncio"},
    "shared_keys": {"game_server", "lobby", "loadtest", "engine", "django", "redis"},
}


def imported(path: Path) -> set[str]:
    """Top-level names of every absolute import in `path`, at any depth of the code."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("folder", sorted(NEVER))
def test_folder_imports_only_what_it_may(folder: str) -> None:
    bad = {str(p.relative_to(ROOT)): sorted(imported(p) & NEVER[folder])
           for p in sorted((ROOT / folder).rglob("*.py"))}
    assert {p: names for p, names in bad.items() if names} == {}


def test_lobby_and_nodes_use_one_presence_layout() -> None:
    """The node's writer and the lobby's reader name the very same keys."""
    import redis
    from redis import asyncio as aioredis

    from game_server.shared_state import RedisPresence as NodeWriter
    from lobby.shared.presence import RedisPresence as LobbyReader
    from shared_keys import presence_keys

    node = NodeWriter(aioredis.Redis(), "p:")  # clients connect on their first command only
    lobby = LobbyReader(redis.Redis(), "p:")
    assert lobby.keys == node.keys == presence_keys("p:")
    assert (lobby.keys.user(7), lobby.keys.node("n1"), lobby.keys.nodes) == (
        "p:presence:user:7", "p:presence:node:n1", "p:presence:nodes")
