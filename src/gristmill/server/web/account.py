"""The account page: what the caller uses of its quotas (anonymous callers by client
address)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.views import LogoutView
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from gristmill.app.service import default_service
from gristmill.server.access import session_caller
from gristmill.server.quotas import usage_of
from gristmill.server.web.views import pages
from gristmill.store.records import QuotaLimits


def _row(name: str, used: int, limit: int | None, *, size: bool = False) -> dict[str, Any]:
    share = None if not limit else min(100, round(100 * used / limit))
    return {"name": name, "used": used, "limit": limit, "size": size, "share": share}


@require_safe
@never_cache
@pages
def account_page(request: HttpRequest) -> HttpResponse:
    """The caller's usage beside its quotas, and when each frees up."""
    caller = session_caller(request)
    report = usage_of(request, caller, default_service().store)
    used, limits = report.usage, report.limits or QuotaLimits()
    rows = [
        _row("Runs queued or running", used.concurrent, limits.concurrent),
        _row("Runs in the last 24 hours", used.runs_today, limits.per_day),
        _row(
            "Storage of unexpired runs",
            used.storage_bytes,
            limits.storage_bytes,
            size=True,
        ),
    ]
    context = {
        "caller": caller,
        "rows": rows,
        "next_run_frees_at": used.oldest_today and used.oldest_today + timedelta(days=1),
        "next_expiry": used.next_expiry,
    }
    return render(request, "gristmill/account.html", context)


class SignOutView(LogoutView):
    """Sign out, then go to the site's ``LOGOUT_REDIRECT_URL``, or to gristmill's first page
    when the site sets none (a host project may have no "signed out" page of its own)."""

    def get_default_redirect_url(self) -> str:
        if self.next_page or settings.LOGOUT_REDIRECT_URL:
            return str(super().get_default_redirect_url())
        return reverse("gristmill-web:pipelines")
