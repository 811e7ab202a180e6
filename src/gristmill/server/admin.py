"""The Django admin (``/admin/``) for staff: runs, data files and API tokens, read-mostly; and
each user's own quotas (an empty field takes the site default, ``GRISTMILL_QUOTA_*``).

Records are not edited here: a run changes through its actions only, which the admin offers on
the selected runs (cancel, run again, pin, unpin, delete) and which go through the same
functions as the REST API and the run page (:mod:`gristmill.server.actions`), with the same
checks. A token may be revoked (deleted); a data file deleted with its file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from gristmill.app.service import default_service
from gristmill.errors import NotFoundError
from gristmill.server import actions, datafiles
from gristmill.server.access import session_caller
from gristmill.server.models import ApiToken, DataFile, Input, Quota, Run, Step

if TYPE_CHECKING:  # the admin's classes are generic for the type checker only
    RunModelAdmin = admin.ModelAdmin[Run]
    DataFileModelAdmin = admin.ModelAdmin[DataFile]
    ApiTokenModelAdmin = admin.ModelAdmin[ApiToken]
    InputInlineBase = admin.TabularInline[Input, Run]
    StepInlineBase = admin.TabularInline[Step, Run]
else:
    RunModelAdmin = DataFileModelAdmin = ApiTokenModelAdmin = admin.ModelAdmin
    InputInlineBase = StepInlineBase = admin.TabularInline


class ReadOnly:
    """No adding and no editing: records come from submissions and runs."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class InputInline(ReadOnly, InputInlineBase):
    model = Input
    fields = ("position", "name", "kind", "size", "sha256", "media_type", "source")
    readonly_fields = fields
    extra = 0
    can_delete = False


class StepInline(ReadOnly, StepInlineBase):
    model = Step
    fields = ("position", "name", "state", "attempt", "started_at", "finished_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False
    ordering = ("position",)


RunAction = Callable[["RunModelAdmin", HttpRequest, "QuerySet[Run]"], None]


def _run_action(name: str, verb: str, act: Callable[..., Any]) -> RunAction:
    """An admin action doing ``act(caller, service, run_id)`` to each selected run, and
    saying how many it was done to and why the others were refused."""

    def action(model_admin: RunModelAdmin, request: HttpRequest, runs: QuerySet[Run]) -> None:
        caller = session_caller(request)
        service = default_service()
        done = 0
        for run_id in runs.values_list("id", flat=True):
            try:
                act(caller, service, str(run_id))
                done += 1
            except (*actions.REFUSALS, NotFoundError) as error:
                model_admin.message_user(request, f"run {run_id}: {error}", messages.WARNING)
        if done:
            model_admin.message_user(request, f"{verb} {done} run{'s' if done != 1 else ''}")

    action.__name__ = name
    return admin.action(description=f"{name.capitalize()} the selected runs")(action)


cancel_runs = _run_action("cancel", "Cancelled", actions.cancel)
rerun_runs = _run_action("rerun", "Queued again", actions.rerun)
pin_runs = _run_action(
    "pin",
    "Pinned",
    lambda caller, service, run_id: actions.pin(caller, service, run_id, pinned=True),
)
unpin_runs = _run_action(
    "unpin",
    "Unpinned",
    lambda caller, service, run_id: actions.pin(caller, service, run_id, pinned=False),
)
delete_runs = _run_action("delete", "Deleted", actions.delete)


@admin.register(Run)
class RunAdmin(ReadOnly, RunModelAdmin):
    list_display = (
        "id",
        "pipeline",
        "state",
        "queue",
        "owner",
        "created_at",
        "finished_at",
        "pinned",
    )
    list_filter = ("state", "pipeline", "queue", "pinned")
    search_fields = ("id", "pipeline", "owner__username")
    date_hierarchy = "created_at"
    ordering = ("-created_at",)
    readonly_fields = [field.name for field in Run._meta.fields]
    inlines = (InputInline, StepInline)
    actions = (cancel_runs, rerun_runs, pin_runs, unpin_runs, delete_runs)
    list_select_related = ("owner",)
    show_full_result_count = False  # no COUNT(*) over every run on each page

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # the "delete" action expires a run the way the API does instead

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        found = super().get_actions(request)
        found.pop("delete_selected", None)
        return found


@admin.register(DataFile)
class DataFileAdmin(ReadOnly, DataFileModelAdmin):
    list_display = ("name", "owner", "size", "media_type", "created_at")
    search_fields = ("name", "owner__username", "sha256")
    ordering = ("-created_at",)
    readonly_fields = ("id", "owner", "name", "path", "size", "sha256", "media_type", "created_at")
    list_select_related = ("owner",)

    def delete_model(self, request: HttpRequest, obj: DataFile) -> None:
        # The same function as the API's, with its order: the row, then the bytes.
        with contextlib.suppress(NotFoundError):  # deleted meanwhile
            datafiles.delete(session_caller(request), obj.pk, service=default_service())

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[DataFile]) -> None:
        for datafile in queryset:
            self.delete_model(request, datafile)


@admin.register(ApiToken)
class ApiTokenAdmin(ReadOnly, ApiTokenModelAdmin):
    list_display = ("name", "user", "prefix", "created_at", "last_used_at")
    search_fields = ("name", "user__username", "prefix")
    ordering = ("-created_at",)
    readonly_fields = ("user", "name", "prefix", "created_at", "last_used_at")
    exclude = ("digest",)
    list_select_related = ("user",)


@admin.register(Quota)
class QuotaAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("user", "concurrent", "runs_per_day", "storage_mb", "unlimited")
    search_fields = ("user__username",)
    raw_id_fields = ("user",)
