"""Games are plug-ins: a match names its game, a seat keeps the game's own result columns
(`stats`) instead of fixed kills/deaths, a node lists the modes it runs.

Every match stored before this migration was a match of the one game the project then
had, the Arena (its modes arena, sprint, duel), with kills and deaths as its result
columns: that is what the data step records, as data (no code here imports a game).
"""

from django.db import migrations, models

LEGACY_GAME = "arena"
LEGACY_COLUMNS = ("kills", "deaths")
BATCH = 1000


def forwards(apps, schema_editor):
    Match = apps.get_model("matchmaking", "Match")
    MatchPlayer = apps.get_model("matchmaking", "MatchPlayer")
    Match.objects.update(game=LEGACY_GAME)
    batch = []
    for seat in MatchPlayer.objects.only("id", "kills", "deaths").iterator(chunk_size=BATCH):
        stats = {c: getattr(seat, c) for c in LEGACY_COLUMNS if getattr(seat, c) is not None}
        if stats:
            seat.stats = stats
            batch.append(seat)
        if len(batch) >= BATCH:
            MatchPlayer.objects.bulk_update(batch, ["stats"])
            batch = []
    MatchPlayer.objects.bulk_update(batch, ["stats"])
    batch = []
    for match in Match.objects.exclude(result=None).only("pk", "result").iterator(chunk_size=BATCH):
        if not isinstance(match.result, list):
            continue
        for row in match.result:
            if isinstance(row, dict) and "stats" not in row:
                row["stats"] = {c: row.pop(c) for c in LEGACY_COLUMNS if c in row}
        batch.append(match)
        if len(batch) >= BATCH:
            Match.objects.bulk_update(batch, ["result"])
            batch = []
    Match.objects.bulk_update(batch, ["result"])


def backwards(apps, schema_editor):
    MatchPlayer = apps.get_model("matchmaking", "MatchPlayer")
    Match = apps.get_model("matchmaking", "Match")
    batch = []
    for seat in MatchPlayer.objects.only("id", "stats").iterator(chunk_size=BATCH):
        stats = seat.stats or {}
        seat.kills, seat.deaths = stats.get("kills"), stats.get("deaths")
        batch.append(seat)
    MatchPlayer.objects.bulk_update(batch, ["kills", "deaths"], batch_size=BATCH)
    batch = []
    for match in Match.objects.exclude(result=None).only("pk", "result").iterator(chunk_size=BATCH):
        for row in match.result if isinstance(match.result, list) else []:
            if isinstance(row, dict):
                row.update(row.pop("stats", None) or {})
        batch.append(match)
    Match.objects.bulk_update(batch, ["result"], batch_size=BATCH)


class Migration(migrations.Migration):

    dependencies = [
        ("matchmaking", "0002_node_capacity_in_players"),
    ]

    operations = [
        migrations.AddField(
            model_name="node",
            name="modes",
            field=models.JSONField(blank=True, default=list, help_text="the modes it runs"),
        ),
        migrations.AddField(
            model_name="match",
            name="game",
            field=models.CharField(db_index=True, default="", help_text="the mode's game",
                                   max_length=16),
            preserve_default=False,
        ),
        migrations.AddField(
            model_name="matchplayer",
            name="stats",
            field=models.JSONField(blank=True, default=dict,
                                   help_text="the game's result columns: name -> value"),
        ),
        migrations.RunPython(forwards, backwards),
        migrations.RemoveField(model_name="matchplayer", name="deaths"),
        migrations.RemoveField(model_name="matchplayer", name="kills"),
    ]
