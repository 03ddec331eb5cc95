"""The registry of games: which game packages this process hosts, read once at start.

The env var `GAMES` lists importable packages, comma separated (default `DEFAULT_GAMES`);
each must hold a module-level `GAME = engine.game.define(...)`. The node, the lobby, the
load test, replay, the benchmarks and `python -m engine` all look games up here; outside
the registry and the games themselves nothing imports a game.
"""

from __future__ import annotations

import importlib
import os
from dataclasses import dataclass, field

from engine.game import DefinitionError, GameDef, Mode

DEFAULT_GAMES = "games.arena,games.tag"
ENV = "GAMES"


class UnknownGame(KeyError):
    """No registered game has this name."""


class UnknownMode(KeyError):
    """No registered game has a mode of this name."""


class RegistryError(DefinitionError):
    """A listed package is missing, has no `GAME`, or clashes with another game."""


@dataclass(frozen=True)
class Registry:
    games: dict[str, GameDef]                                   # by game name, listed order
    modes: dict[str, tuple[GameDef, Mode]] = field(default_factory=dict)
    spec: str = ""                                              # what was loaded

    def game(self, name: str) -> GameDef:
        try:
            return self.games[name]
        except KeyError:
            raise UnknownGame(name) from None

    def mode(self, mode_name: str) -> tuple[GameDef, Mode]:
        try:
            return self.modes[mode_name]
        except KeyError:
            raise UnknownMode(mode_name) from None


def from_defs(defs: list[GameDef], spec: str = "") -> Registry:
    """A registry of these games (game and mode names must be unique across them)."""
    games: dict[str, GameDef] = {}
    modes: dict[str, tuple[GameDef, Mode]] = {}
    for d in defs:
        if not isinstance(d, GameDef):
            raise RegistryError(f"{d!r} is not a GameDef")
        if d.name in games:
            raise RegistryError(f"two games named {d.name!r}")
        games[d.name] = d
        for name, mode in d.modes.items():
            if name in modes:
                raise RegistryError(f"mode {name!r} of game {d.name!r} is already a mode of "
                                    f"game {modes[name][0].name!r}")
            modes[name] = (d, mode)
    return Registry(games, modes, spec)


def load(spec: str | None = None) -> Registry:
    """Import the packages of `spec` (default: $GAMES, else DEFAULT_GAMES)."""
    if spec is None:
        spec = os.environ.get(ENV) or DEFAULT_GAMES
    packages = [p.strip() for p in spec.split(",") if p.strip()]
    if not packages:
        raise RegistryError(f"{ENV}={spec!r} lists no game package")
    defs = []
    for package in packages:
        try:
            module = importlib.import_module(package)
        except ImportError as exc:
            raise RegistryError(f"game package {package!r} cannot be imported: {exc}") from exc
        d = getattr(module, "GAME", None)
        if not isinstance(d, GameDef):
            raise RegistryError(f"game package {package!r} has no GAME = define(...)")
        defs.append(d)
    return from_defs(defs, ",".join(packages))


_registry: Registry | None = None


def registry() -> Registry:
    """The process-wide registry, loaded from $GAMES on first use."""
    global _registry
    if _registry is None:
        _registry = load()
    return _registry
