from django.contrib import admin

from .models import ResultReport


@admin.register(ResultReport)
class ResultReportAdmin(admin.ModelAdmin):
    list_display = ("match_id", "node_id", "status", "applied", "duplicates", "received_at")
    list_filter = ("status", "applied")
    search_fields = ("match_id", "node_id")
