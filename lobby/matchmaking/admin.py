import time

from django.contrib import admin, messages

from lobby.replays.admin import MatchReplayInline

from .handoff import request_drain
from .models import Match, MatcherState, MatchPlayer, Node, SeenNonce, Ticket
from .services import abort_matches


@admin.action(description="Abort selected active matches (frees their players, no rating)")
def abort_selected(modeladmin, request, queryset) -> None:
    ids = list(queryset.filter(status=Match.ACTIVE).values_list("pk", flat=True))
    abort_matches(ids, "aborted by admin", time.time())
    modeladmin.message_user(request, f"{len(ids)} match(es) aborted.")


@admin.action(description="Drain selected nodes (matches move to other nodes; docs/scale-out.md)")
def drain_selected(modeladmin, request, queryset) -> None:
    for node in queryset:
        status, answer = request_drain(node)
        level = messages.SUCCESS if status == 202 else messages.ERROR
        modeladmin.message_user(request, f"{node.node_id}: {status or 'unreachable'} {answer}", level)


@admin.register(Node)
class NodeAdmin(admin.ModelAdmin):
    list_display = ("node_id", "url", "alive", "draining", "modes", "capacity", "players",
                    "pending", "max_rooms", "rooms", "pending_rooms", "last_seen")
    list_filter = ("alive", "draining")
    search_fields = ("node_id", "url")
    actions = [drain_selected]


class MatchPlayerInline(admin.TabularInline):
    model = MatchPlayer
    extra = 0
    raw_id_fields = ("user", "ticket")
    readonly_fields = ("rating_before", "rating_after")


@admin.register(Match)
class MatchAdmin(admin.ModelAdmin):
    list_display = ("match_id", "game", "mode", "status", "replay__verdict", "node", "seats",
                    "bots", "created_at", "ended_at", "reason")
    list_filter = ("status", "game", "mode", ("replay__verdict", admin.ChoicesFieldListFilter))
    search_fields = ("match_id",)
    date_hierarchy = "created_at"
    inlines = [MatchPlayerInline, MatchReplayInline]   # the replay: size, truncated, verdict
    actions = [abort_selected]


@admin.register(Ticket)
class TicketAdmin(admin.ModelAdmin):
    list_display = ("id", "user", "mode", "rating", "status", "created_at", "closed_at")
    list_filter = ("status", "mode")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)


@admin.register(MatchPlayer)
class MatchPlayerAdmin(admin.ModelAdmin):
    list_display = ("match", "user", "active", "placement", "score", "stats",
                    "rating_before", "rating_after")
    list_filter = ("active",)
    search_fields = ("user__username", "match__match_id")
    raw_id_fields = ("user", "match", "ticket")


admin.site.register(SeenNonce)
admin.site.register(MatcherState)
