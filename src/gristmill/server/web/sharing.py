"""The pages of sharing and notifications: the run page's "Share" panel (its buttons post
here), a share link, the runs shared with the signed-in user, and their notification
settings. Every change is a POST with Django's CSRF check; a page view changes nothing but the
browser's own session (a share link opened)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from gristmill.app.service import Service, default_service
from gristmill.app.submission import get_run
from gristmill.errors import (
    NotFoundError,
    PermissionDeniedError,
    SignInRequiredError,
    SubmissionError,
)
from gristmill.server import notifications, sharing
from gristmill.server.access import Caller, may_see, session_caller
from gristmill.server.deliveries import absolute
from gristmill.server.models import NotifySettings
from gristmill.server.web.runs import sentence
from gristmill.server.web.views import HttpResponseSeeOther, pages
from gristmill.store.records import RunRecord

_SHARE_ACTIONS = ("link", "unlink", "add", "remove")


def run_page_extras(
    request: HttpRequest, caller: Caller, service: Service, run: RunRecord
) -> dict[str, Any]:
    """What the run page adds for sharing and notifications: whether the caller may act on
    the run (``may_act``; a caller it was shared with may only read it), and for its owner and
    staff the share panel (``shares``, ``share_url``) and the notifications' log."""
    if not may_see(caller, run):
        return {"may_act": False}
    extras: dict[str, Any] = {"may_act": True}
    extras["deliveries"] = notifications.deliveries(run.id, staff=caller.is_staff)
    if run.owner_id is not None and caller.signed_in:
        shares = sharing.shares_of(caller, service, run.id)
        extras["shares"] = shares
        if shares.link_token is not None:
            path = sharing.link_path(shares.link_token)
            site_url = service.settings.site_url
            extras["share_url"] = (
                absolute(service.settings, path) if site_url else request.build_absolute_uri(path)
            )
    return extras


@require_POST
@pages
def share_action(request: HttpRequest, run_id: str) -> HttpResponse:
    """The share panel's buttons (POST ``action``: link, unlink, add, remove, with
    ``username`` for the last two); then the run page again (303), saying what was done."""
    caller, service = session_caller(request), default_service()
    action = request.POST.get("action", "")
    username = request.POST.get("username", "").strip()
    if action not in _SHARE_ACTIONS:
        raise NotFoundError(f"there is no page at {request.path}")
    try:
        if action == "link":
            sharing.make_link(caller, service, run_id)
            done = "Shared by link: whoever has the link can see this run, nothing more."
        elif action == "unlink":
            sharing.revoke_link(caller, service, run_id)
            done = "Link revoked: it no longer shows this run."
        elif action == "add":
            sharing.share_with(caller, service, run_id, username)
            done = f"Shared with {username}."
        else:
            sharing.unshare(caller, service, run_id, username)
            done = f"No longer shared with {username}."
    except SubmissionError as refused:
        messages.error(request, sentence(" ".join(refused.errors.get("username", []))))
    except PermissionDeniedError as refused:
        messages.error(request, sentence(str(refused)))
    else:
        messages.success(request, done)
    return HttpResponseSeeOther(reverse("gristmill-web:run", args=[run_id]) + "#share")


@require_safe
@never_cache
@pages
def shared_link(request: HttpRequest, token: str) -> HttpResponse:
    """A share link: this browser may read the run from now on; on to the run's page."""
    run_id = sharing.run_of_link(token)
    sharing.remember(request, token)
    return HttpResponseSeeOther(reverse("gristmill-web:run", args=[run_id]))


@require_safe
@never_cache
@pages
def shared_list(request: HttpRequest) -> HttpResponse:
    """The runs other users shared with the signed-in user, newest share first."""
    caller = session_caller(request)
    if not caller.signed_in:
        raise SignInRequiredError("sign in to see the runs shared with you")
    service = default_service()
    runs = [get_run(run_id, service=service).run for run_id in sharing.shared_runs(caller)]
    owners = _usernames({run.owner_id for run in runs if run.owner_id is not None})
    rows = [{"run": run, "owner": owners.get(run.owner_id or 0, "")} for run in runs]
    return render(request, "gristmill/shared.html", {"rows": rows})


def _usernames(ids: set[int]) -> dict[int, str]:
    from django.contrib.auth import get_user_model

    model = get_user_model()
    return {user.pk: user.get_username() for user in model.objects.filter(pk__in=ids)}


@require_http_methods(["GET", "POST"])
@never_cache
@pages
def settings_page(request: HttpRequest) -> HttpResponse:
    """The signed-in user's settings: whether their runs e-mail them when they end (POST
    saves it and shows the page again, 303)."""
    caller = session_caller(request)
    if caller.user_id is None:
        raise SignInRequiredError("sign in to change your settings")
    if request.method == "POST":
        wanted = request.POST.get("email_runs") == "on"
        NotifySettings.objects.update_or_create(
            user_id=caller.user_id, defaults={"email_runs": wanted}
        )
        messages.success(request, "Saved.")
        return HttpResponseSeeOther(reverse("gristmill-web:settings"))
    context = {
        "email_runs": notifications.wants_email(caller.user_id),
        "email": notifications.user_email(caller.user_id),
        "email_available": notifications.email_enabled(default_service().settings),
    }
    return render(request, "gristmill/settings.html", context)
