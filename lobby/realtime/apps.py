from django.apps import AppConfig


class RealtimeConfig(AppConfig):
    name = "lobby.realtime"
    label = "realtime"

    def ready(self) -> None:
        from . import signals

        signals.connect()
