"""The games-as-plug-ins migrations on real data: the ratings and stats stored before are
the Arena's afterwards (its rating, games, wins; kills and deaths as its result columns)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

BEFORE = [("accounts", "0001_initial"), ("matchmaking", "0002_node_capacity_in_players"),
          ("ratings", "0001_initial")]


def migrate(targets: list[tuple[str, str]] | None = None):
    executor = MigrationExecutor(connection)
    targets = targets or executor.loader.graph.leaf_nodes()
    executor.migrate(targets)
    return MigrationExecutor(connection).loader.project_state(targets).apps


@pytest.mark.django_db(transaction=True)
def test_existing_ratings_and_stats_become_the_arenas():
    old = migrate(BEFORE)
    User = old.get_model("auth", "User")
    Profile = old.get_model("accounts", "Profile")
    Match = old.get_model("matchmaking", "Match")
    MatchPlayer = old.get_model("matchmaking", "MatchPlayer")
    ann, bob = User.objects.create(username="ann"), User.objects.create(username="bob")
    Profile.objects.create(user=ann, rating=1337.5, games=3, wins=2)
    Profile.objects.create(user=bob, rating=1200, games=0, wins=0)
    match = Match.objects.create(
        match_id="old1", mode="sprint", seats=1, bots=1, status="finished", result=[
            {"user_id": ann.id, "name": "ann", "score": 9, "kills": 4, "deaths": 2,
             "placement": 1, "bot": False},
            {"user_id": 0, "name": "bot-1", "score": 1, "kills": 2, "deaths": 4,
             "placement": 2, "bot": True}])
    MatchPlayer.objects.create(match=match, user=ann, active=False, score=9, kills=4, deaths=2,
                               placement=1)
    Match.objects.create(match_id="old2", mode="arena", seats=1)  # never reported
    MatchPlayer.objects.create(match_id="old2", user=bob, active=False)

    new = migrate()
    Rating = new.get_model("ratings", "Rating")
    Match = new.get_model("matchmaking", "Match")
    MatchPlayer = new.get_model("matchmaking", "MatchPlayer")
    rating = Rating.objects.get(user_id=ann.id)
    assert (rating.game, rating.rating, rating.games, rating.wins) == ("arena", 1337.5, 3, 2)
    assert Rating.objects.get(user_id=bob.id).game == "arena"
    assert set(Match.objects.values_list("game", flat=True)) == {"arena"}
    assert MatchPlayer.objects.get(user_id=ann.id).stats == {"kills": 4, "deaths": 2}
    assert MatchPlayer.objects.get(user_id=bob.id).stats == {}
    rows = Match.objects.get(pk="old1").result
    assert rows[0] == {"user_id": ann.id, "name": "ann", "score": 9, "placement": 1,
                       "bot": False, "stats": {"kills": 4, "deaths": 2}}
    assert rows[1]["stats"] == {"kills": 2, "deaths": 4}

    # and back: the stats return to kills/deaths (the ratings table goes)
    old = migrate(BEFORE)
    seat = old.get_model("matchmaking", "MatchPlayer").objects.get(user_id=ann.id)
    assert (seat.kills, seat.deaths) == (4, 2)
    assert old.get_model("matchmaking", "Match").objects.get(pk="old1").result[0]["kills"] == 4
    migrate()
