"""The lobby's view of the game registry (`engine.registry`): the modes it offers, each
mode's match size, each game's title and result columns.

One place, so that the queue, the matcher, results ingestion and the pages agree. The
lobby imports no game: everything comes from the registry (`GAMES`, docs/games.md), read
once per process. `MATCH_MODES` (optional) narrows the offered modes, `MATCH_MODE`
(optional) picks the default one; both are checked against the registry at startup
(`check()`, from the matchmaking app's `ready()`), with a clear error.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from engine.registry import UnknownMode, registry


@dataclass(frozen=True, slots=True)
class ModeInfo:
    """A mode as the lobby offers it."""

    name: str
    game: str
    title: str
    game_title: str
    min_players: int
    max_players: int

    def size(self, cap: int = 0) -> int:
        """Seats per match (humans + bots): the game's `max_players`, capped by `cap`
        (`MATCH_SIZE`, 0 = no cap), never below `min_players`."""
        size = min(self.max_players, cap) if cap > 0 else self.max_players
        return max(size, self.min_players, 1)

    def as_json(self) -> dict:
        return {"game": self.game, "game_title": self.game_title, "mode": self.name,
                "title": self.title, "min_players": self.min_players,
                "max_players": self.max_players, "size": self.size(settings.MATCH_SIZE)}


@dataclass(frozen=True, slots=True)
class GameInfo:
    name: str
    title: str
    columns: tuple[tuple[str, str], ...]  # (name, label) of its result columns, in order


@lru_cache(maxsize=8)
def _offered(names: tuple[str, ...]) -> dict[str, ModeInfo]:
    reg = registry()
    out: dict[str, ModeInfo] = {}
    for name in names or tuple(reg.modes):
        try:
            game, mode = reg.mode(name)
        except (UnknownMode, KeyError):
            raise ImproperlyConfigured(
                f"MATCH_MODES names {name!r}, which no registered game declares; "
                f"registered modes: {', '.join(reg.modes) or 'none'} (GAMES lists the game "
                "packages)") from None
        out[name] = ModeInfo(name, game.name, mode.title or name, game.title or game.name,
                             mode.min_players, mode.max_players)
    if not out:
        raise ImproperlyConfigured("no game mode to offer: the registry (GAMES) is empty")
    return out


def offered() -> dict[str, ModeInfo]:
    """The modes a ticket may ask for, by name, in registry (or `MATCH_MODES`) order."""
    return _offered(tuple(settings.MATCH_MODES))


def mode(name: str) -> ModeInfo | None:
    return offered().get(name)


def default_mode() -> str:
    """`MATCH_MODE`, or the first offered mode."""
    modes = offered()
    if not settings.MATCH_MODE:
        return next(iter(modes))
    if settings.MATCH_MODE not in modes:
        raise ImproperlyConfigured(
            f"MATCH_MODE {settings.MATCH_MODE!r} is not an offered mode; one of "
            f"{', '.join(modes)}")
    return settings.MATCH_MODE


def sizes() -> dict[str, int]:
    """Seats per match of every offered mode (`ModeInfo.size` with `MATCH_SIZE`)."""
    return {name: m.size(settings.MATCH_SIZE) for name, m in offered().items()}


@lru_cache(maxsize=1)
def _games() -> dict[str, GameInfo]:
    return {name: GameInfo(name, g.title or name,
                           tuple((c.name, c.label or c.name) for c in g.results))
            for name, g in registry().games.items()}


def games() -> dict[str, GameInfo]:
    """Every registered game, by name, in registry order."""
    return _games()


def game(name: str) -> GameInfo:
    """The registered game, or a stand-in for one no longer registered (its matches and
    ratings stay in the database: shown under its name, no declared columns)."""
    return _games().get(name) or GameInfo(name, name, ())


def default_game() -> str:
    return offered()[default_mode()].game


def check() -> None:
    """Startup check of MATCH_MODES / MATCH_MODE / MATCH_SIZE against the registry."""
    if settings.MATCH_SIZE < 0:
        raise ImproperlyConfigured("MATCH_SIZE must be 0 (no cap) or a positive number of seats")
    default_mode()


def reset() -> None:
    """Forget the cached view (tests that swap the registry)."""
    _offered.cache_clear()
    _games.cache_clear()
