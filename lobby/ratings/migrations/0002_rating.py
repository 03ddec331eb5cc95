"""Ratings per game: `Rating` (user, game). The ratings and totals players had before
(on their profile) were all earned in the one game the project then had, the Arena: they
become their ratings in game "arena" (as data; no code here imports a game)."""

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

import lobby.ratings.models

LEGACY_GAME = "arena"
BATCH = 1000


def forwards(apps, schema_editor):
    Profile = apps.get_model("accounts", "Profile")
    Rating = apps.get_model("ratings", "Rating")
    batch = []
    for user_id, rating, games, wins in (Profile.objects.values_list(
            "user_id", "rating", "games", "wins").iterator(chunk_size=BATCH)):
        batch.append(Rating(user_id=user_id, game=LEGACY_GAME, rating=rating, games=games,
                            wins=wins))
        if len(batch) >= BATCH:
            Rating.objects.bulk_create(batch)
            batch = []
    Rating.objects.bulk_create(batch)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0001_initial"),
        ("ratings", "0001_initial"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="Rating",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False,
                                           verbose_name="ID")),
                ("game", models.CharField(max_length=16)),
                ("rating", models.FloatField(default=lobby.ratings.models.start_rating)),
                ("games", models.PositiveIntegerField(default=0,
                                                      help_text="finished, rated matches")),
                ("wins", models.PositiveIntegerField(default=0)),
                ("user", models.ForeignKey(on_delete=django.db.models.deletion.CASCADE,
                                           related_name="ratings", to=settings.AUTH_USER_MODEL)),
            ],
            options={
                "indexes": [models.Index(fields=["game", "-rating"], name="rating_board")],
                "constraints": [models.UniqueConstraint(fields=("user", "game"),
                                                        name="one_rating_per_game")],
            },
        ),
        migrations.RunPython(forwards, migrations.RunPython.noop),
    ]
