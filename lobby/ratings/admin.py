from django.contrib import admin

from .models import Rating, ResultReport


@admin.register(ResultReport)
class ResultReportAdmin(admin.ModelAdmin):
    list_display = ("match_id", "node_id", "status", "applied", "duplicates", "received_at")
    list_filter = ("status", "applied")
    search_fields = ("match_id", "node_id")


@admin.register(Rating)
class RatingAdmin(admin.ModelAdmin):
    list_display = ("user", "game", "rating", "games", "wins")
    list_filter = ("game",)
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
