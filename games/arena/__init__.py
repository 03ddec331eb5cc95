"""The Arena: a top-down shooter for 2 to 16 players (rules: docs/games.md, "The Arena").

Its declarations for the hosts: modes, entity kinds, events, input fields, result columns,
the wire-state bot brain (brain.py) and the browser module (browser.js).
"""

from engine.game import EntityKind, EventKind, InputField, Mode, ResultColumn, define
from games.arena import brain
from games.arena.game import (
    AIM_MAX,
    EV_HIT,
    EV_KILL,
    EV_PICKUP,
    EV_RESPAWN,
    KIND_PICKUP,
    KIND_PLAYER,
    KIND_PROJECTILE,
    MODES,
    Arena,
)

GAME = define(
    name="arena",
    title="Arena",
    game=Arena,
    modes=[
        Mode("arena", MODES["arena"], min_players=2, max_players=16, title="Arena (16 players)"),
        Mode("sprint", MODES["sprint"], min_players=2, max_players=16, title="Sprint (20 s)"),
        Mode("duel", MODES["duel"], min_players=2, max_players=2, title="Duel (1 v 1)"),
    ],
    entities=[
        EntityKind(KIND_PLAYER, "player",
                   ("x", "y", "aim", "hp", "score", "kills", "deaths", "flags", "ack", "name"),
                   interpolate=("x", "y"), ack="ack"),
        # a projectile's position is x0 + vx * (tick - born): the client computes it
        EntityKind(KIND_PROJECTILE, "projectile", ("x0", "y0", "vx", "vy", "born", "owner")),
        EntityKind(KIND_PICKUP, "pickup", ("x", "y", "sort")),
    ],
    events=[
        EventKind(EV_HIT, "hit", ("player", "attacker", "damage")),
        EventKind(EV_KILL, "kill", ("player", "killer")),
        EventKind(EV_PICKUP, "pickup", ("player", "sort")),
        EventKind(EV_RESPAWN, "respawn", ("player",)),
    ],
    inputs=[
        InputField("mx", -100, 100),
        InputField("my", -100, 100),
        InputField("aim", -AIM_MAX, AIM_MAX, wrap=True),
        InputField("buttons", 0, 255),
    ],
    results=[ResultColumn("kills", "Kills"), ResultColumn("deaths", "Deaths")],
    bot=brain.make_brain,
)
