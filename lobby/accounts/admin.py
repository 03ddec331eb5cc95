from django.contrib import admin

from .models import LoginFailure, Profile


@admin.register(Profile)
class ProfileAdmin(admin.ModelAdmin):
    list_display = ("user", "rating", "guest", "games", "wins", "created_at")
    list_filter = ("guest",)
    search_fields = ("user__username",)
    ordering = ("-rating",)


@admin.register(LoginFailure)
class LoginFailureAdmin(admin.ModelAdmin):
    list_display = ("key", "at")
    search_fields = ("key",)
