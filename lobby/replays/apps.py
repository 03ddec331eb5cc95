from django.apps import AppConfig


class ReplaysConfig(AppConfig):
    name = "lobby.replays"
    label = "replays"
    verbose_name = "Replays"
