"""The replay page (issue 14, Watch): the match page's "Watch replay" once the frames file
is built, the player page that fetches it, and what the page says without one."""

from __future__ import annotations

from django.core.management import call_command

from .conftest import signed_post
from .test_replays import RESULTS, match, play, storage, upload  # noqa: F401 - fixtures

WATCH = "/matches/r1/replay/"


def test_watch_replay_appears_once_the_frames_are_built(client, match):  # noqa: F811
    assert client.get("/matches/nope/replay/").status_code == 404
    page = client.get(WATCH).content.decode()
    assert "no replay to watch" in page and "replay.js" not in page
    assert "Watch replay" not in client.get("/matches/r1/").content.decode()

    body, data = play("r1", [u.id for u in match.users])
    upload(client, "r1", data)
    signed_post(client, RESULTS, body)
    assert "being checked" in client.get(WATCH).content.decode()   # pending, no frames yet
    call_command("verify_replays")

    match_page = client.get("/matches/r1/").content.decode()
    assert 'id="watch-replay"' in match_page and f'href="{WATCH}"' in match_page
    page = client.get(WATCH).content.decode()
    assert "/static/replay.js" in page
    assert 'ArenaReplay.watch({framesUrl: "/matches/r1/replay.frames"})' in page
    for control in ("replay-canvas", "replay-play", "replay-seek", "replay-speed",
                    "replay-follow", "replay-share", "replay-scoreboard"):
        assert f'id="{control}"' in page
    assert client.get("/matches/r1/replay.frames").status_code == 200
