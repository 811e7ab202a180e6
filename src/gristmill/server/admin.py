"""The Django admin: staff set each user's own quotas here (an empty field takes the site
default, ``GRISTMILL_QUOTA_*``)."""

from __future__ import annotations

from django.contrib import admin

from gristmill.server.models import Quota


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "concurrent", "runs_per_day", "storage_mb", "unlimited")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
