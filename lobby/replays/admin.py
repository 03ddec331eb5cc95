from django.contrib import admin
from django.utils.html import format_html

from .models import MatchReplay

READONLY = ("verdict", "size", "truncated", "frames_size", "sha256", "uploaded_at",
            "result_at", "verified_at", "verify_seconds", "rated", "purged_at", "detail",
            "files")


def files(obj: MatchReplay) -> str:
    links = [format_html('<a href="/matches/{}/replay.{}">{}</a>', obj.pk, ext, label)
             for ext, label, field in (("replay", "replay", obj.file),
                                       ("frames", "frames", obj.frames)) if field]
    return format_html(" · ".join(["{}"] * len(links)), *links) if links else "-"


class MatchReplayInline(admin.StackedInline):
    """On the match's admin page (lobby.matchmaking.admin): size, truncated, verdict."""

    model = MatchReplay
    can_delete = False
    extra = 0
    max_num = 0
    fields = READONLY
    readonly_fields = READONLY

    @admin.display(description="files")
    def files(self, obj: MatchReplay) -> str:
        return files(obj)


@admin.register(MatchReplay)
class MatchReplayAdmin(admin.ModelAdmin):
    list_display = ("match", "verdict", "size", "truncated", "frames_size", "verify_seconds",
                    "rated", "uploaded_at")
    list_filter = ("verdict", "truncated", "rated")
    search_fields = ("match__match_id",)
    fields = ("match", *READONLY)
    readonly_fields = ("match", *READONLY)

    @admin.display(description="files")
    def files(self, obj: MatchReplay) -> str:
        return files(obj)

    def has_add_permission(self, request) -> bool:
        return False
