"""Tag: "it" chases, a touch passes "it" on (docs/games.md is its walk-through)."""

from engine.game import EntityKind, EventKind, InputField, Mode, ResultColumn, define
from games.tag import brain
from games.tag.game import EV_TAG, RUNNER, Tag, TagConfig

GAME = define(
    name="tag",
    title="Tag",
    game=Tag,
    modes=[
        Mode("tag", TagConfig(), min_players=2, max_players=8, title="Tag (up to 8)"),
        Mode("tag-duel", TagConfig(mode="tag-duel", max_players=2, time_limit=60),
             min_players=2, max_players=2, title="Tag duel (1 v 1)"),
    ],
    entities=[EntityKind(RUNNER, "runner", ("x", "y", "it", "score", "flags", "ack", "name"),
                         interpolate=("x", "y"), ack="ack")],
    events=[EventKind(EV_TAG, "tag", ("tagger", "tagged"))],
    inputs=[InputField("mx", -100, 100), InputField("my", -100, 100)],
    results=[ResultColumn("tags", "Tags"), ResultColumn("caught", "Caught")],
    bot=brain.make_brain,
)
