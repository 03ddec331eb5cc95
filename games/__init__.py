"""Game packages: one folder per game (docs/games.md). Listed in $GAMES (engine.registry)."""
