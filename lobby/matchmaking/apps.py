from django.apps import AppConfig


class MatchmakingConfig(AppConfig):
    name = "lobby.matchmaking"
    label = "matchmaking"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # MATCH_MODES / MATCH_MODE / MATCH_SIZE against the game registry: a clear
        # ImproperlyConfigured at start, not a wrong queue later.
        from lobby import games

        games.check()
