from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "lobby.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib import admin

        from . import ratelimit, signals  # (their signal receivers)

        signals.connect()

        # /admin/login/ under the login limits of ratelimit.py, like /accounts/login/
        admin.site.login = ratelimit.rate_limited_login(admin.site.login)
