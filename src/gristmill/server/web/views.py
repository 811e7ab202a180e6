"""The web pages: the pipeline list, a pipeline's submission form, and a run's page.

Every view finds the configured gristmill through :func:`gristmill.app.service.default_service`
when called, and answers a problem with a page, never a traceback, with the status the one map
(:mod:`gristmill.server.statuses`) gives it, as the API does: an unknown pipeline or run is a
404 page, an unreachable database a 503 page, anything unexpected a 500 page with the reference
under which it was logged. A caller who must sign in is sent to the sign-in page instead.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, Concatenate, ParamSpec

from django.conf import settings as django_settings
from django.contrib import messages
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import DisallowedHost, RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from gristmill.app.service import default_service
from gristmill.app.submission import submit
from gristmill.errors import (
    QuotaError,
    SignInRequiredError,
    SubmissionError,
)
from gristmill.server import actions, notifications
from gristmill.server.access import (
    may_see_pipeline,
    session_caller,
    usable_pipeline,
    visible_run,
)
from gristmill.server.api.errors import error_response
from gristmill.server.links import is_api_path
from gristmill.server.quotas import account_of
from gristmill.server.statuses import answer_for, status_of
from gristmill.server.web.filtered import filter_form, filtered_from
from gristmill.server.web.forms import SubmissionForm
from gristmill.server.web.history import RunFilter
from gristmill.server.web.history import run_page as runs_page
from gristmill.server.web.results import results_context, results_page, step_results
from gristmill.server.web.runs import findings_table, run_page_context, sentence
from gristmill.states import RunState

NOTIFY_EMAIL = "gristmill_notify_email"
"""The submission form's "e-mail me when it ends" box (named apart from any parameter)."""

P = ParamSpec("P")
View = Callable[Concatenate[HttpRequest, P], HttpResponse]

logger = logging.getLogger("gristmill.web")


class HttpResponseSeeOther(HttpResponseRedirect):
    """A redirect that the browser follows with a GET (after a form is posted)."""

    status_code = 303


def error_page(request: HttpRequest, status: int, message: str) -> HttpResponse:
    """A page that says what went wrong, with the matching status; under the API's root, the
    API's JSON error instead (Django's own handlers answer there too, e.g. for a bad host)."""
    if is_api_path(request.path):
        return error_response(status, message)
    return render(
        request, "gristmill/error.html", {"status": status, "message": message}, status=status
    )


def pages(view: View[P]) -> View[P]:
    """Answer the errors a view may meet with pages (see the module's docstring)."""

    @functools.wraps(view)
    def answer(request: HttpRequest, /, *args: P.args, **kwargs: P.kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except SignInRequiredError:
            return redirect_to_login(request.get_full_path())
        except RequestDataTooBig as error:
            return bad_request(request, error)
        except Exception as error:
            answered = answer_for(error, f"{request.method} {request.path}", logger)
            return error_page(request, answered.status, answered.message)

    return answer


@require_safe
@pages
def pipeline_list(request: HttpRequest) -> HttpResponse:
    """The pipelines this server offers, each linking to its submission form."""
    caller = session_caller(request)
    pipelines = [p for p in default_service().registry if may_see_pipeline(caller, p)]
    return render(request, "gristmill/pipelines.html", {"pipelines": pipelines})


@require_http_methods(["GET", "POST"])
@pages
def submit_form(request: HttpRequest, name: str) -> HttpResponse:
    """A pipeline's submission form (GET); submitting it (POST) starts a run and redirects to
    the run's page, or shows the form again with each problem next to its field (400, or 413
    for an input over the size limit)."""
    service = default_service()
    caller = session_caller(request)
    pipeline = usable_pipeline(caller, service, name)
    status = 200
    offers_email = caller.signed_in and notifications.email_enabled(service.settings)
    notify_email = offers_email and notifications.wants_email(caller.user_id)
    if request.method == "POST":
        form = SubmissionForm(pipeline, request.POST, request.FILES, caller=caller, service=service)
        status = 400
        notify_email = offers_email and request.POST.get(NOTIFY_EMAIL) == "on"
        retry_after = None
        if form.is_valid():
            account = account_of(request, caller)
            try:
                wishes = notifications.Wishes(email=notify_email)
                run_id = submit(
                    pipeline,
                    form.inputs(),
                    form.params(),
                    owner_id=caller.user_id,
                    ancestor=form.ancestor(),
                    service=service,
                    submitter=account.submitter,
                    quota=account.limits,
                )
                notifications.record(service.settings, run_id, pipeline, caller, wishes)
            except SubmissionError as refusal:
                form.show_refusal(refusal)
                status = status_of(refusal)
                if isinstance(refusal, QuotaError):
                    retry_after = refusal.retry_after
            else:
                return HttpResponseSeeOther(reverse("gristmill-web:run", args=[run_id]))
    else:
        form = SubmissionForm(pipeline, caller=caller, service=service)
    context = {
        "pipeline": pipeline,
        "form": form,
        "offers_email": offers_email,
        "notify_email": notify_email,
        "notify_email_field": NOTIFY_EMAIL,
    }
    response = render(request, "gristmill/submit.html", context, status=status)
    if request.method == "POST" and retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


@require_safe
@never_cache
@pages
def run_page(request: HttpRequest, run_id: str) -> HttpResponse:
    """A run's one permanent page: its progress and live log while it is queued or running
    (kept up to date by ``run.js``), then its results, its error, or why it is gone.

    A succeeded run whose results are stale is queued again first; until the new results are
    ready, the page follows the recomputation and shows the old results, marked stale."""
    service = default_service()
    caller = session_caller(request)
    from gristmill.server.web.sharing import run_page_extras

    status = visible_run(caller, run_id, service)
    registry = service.registry
    pipeline = registry.get(status.run.pipeline) if status.run.pipeline in registry else None
    context: dict[str, Any] = run_page_context(service, status, pipeline)
    context.update(run_page_extras(request, caller, service, context["run"]))
    context["may_pin"] = (
        context["may_act"] and actions.pin_refusal(caller, status.run.owner_id) is None
    )
    if "findings" in request.GET and "maps" in context:
        context["findings"] = findings_table(service, status, context["maps"], request.GET)
    context["filter_form"] = filter_form(service, caller, status, pipeline)
    context["filtered_from"] = filtered_from(status)
    if context["shows_results"]:
        status, staleness = context["status"], context["staleness"]
        results = step_results(service, status, pipeline, request, staleness)
        context["results"] = results
        context["results_page"] = results_page(
            pipeline, results_context(context, results, request), request
        )
    return render(request, "gristmill/run.html", context)


_DONE = {
    "cancel": "Cancelled.",
    "rerun": "Queued again: stale results are recomputed, current ones kept.",
    "delete": "Deleted: the run's files, results and log are gone.",
    "pin": "Pinned: the run is kept until it is unpinned.",
    "unpin": "Unpinned: the run expires at the end of its retention period.",
    "retry-batches": "Queued again: its failed batches are retried, and only those.",
}
_CANCELLING = "Cancelling: the run stops as soon as its current step does."


@require_POST
@pages
def run_action(request: HttpRequest, run_id: str, action: str) -> HttpResponse:
    """The run page's buttons (POST): cancel, rerun, retry-batches, delete, pin, unpin; then
    the run page again (303), saying what happened or why it could not be done."""
    caller, service = session_caller(request), default_service()
    done = _DONE[action]
    try:
        if action == "cancel":
            if actions.cancel(caller, service, run_id) != RunState.CANCELLED:
                done = _CANCELLING
        elif action == "rerun":
            actions.rerun(caller, service, run_id)
        elif action == "delete":
            actions.delete(caller, service, run_id)
        elif action == "retry-batches":
            retried, _ = actions.retry_batches(caller, service, run_id)
            plural = "batch is" if retried == 1 else "batches are"
            done = f"Queued again: {retried:,} failed {plural} retried, and only those."
        else:
            actions.pin(caller, service, run_id, pinned=action == "pin")
    except actions.REFUSALS as refused:
        messages.error(request, sentence(str(refused)))
    else:
        messages.success(request, done)
    return HttpResponseSeeOther(reverse("gristmill-web:run", args=[run_id]))


@require_safe
@never_cache
@pages
def run_list(request: HttpRequest) -> HttpResponse:
    """The caller's own runs, or every run for staff, newest first, filtered by state and
    pipeline. Anonymous callers are asked to sign in: their runs are found by their URLs."""
    caller = session_caller(request)
    if not caller.signed_in:
        raise SignInRequiredError("sign in to list your runs")
    wanted = RunFilter.from_query(caller, request.GET)
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "caller": caller,
        "filter": wanted,
        "page": runs_page(caller, wanted, request.GET.get("page")),
        "query": query.urlencode(),
        "states": [state.value for state in RunState],
        "pipeline_names": [p.name for p in default_service().registry],
    }
    return render(request, "gristmill/runs.html", context)


# -- Django's error handlers (set in gristmill.server.root_urls): pages in the site's own style --


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A request Django could not read. A form over Django's in-memory limit is a 413: its
    text fields (pasted text or JSON) are held in memory, files are not."""
    if isinstance(exception, RequestDataTooBig):
        limit = filesizeformat(django_settings.DATA_UPLOAD_MAX_MEMORY_SIZE)
        message = (
            f"the form is larger than this server accepts for pasted text ({limit}); "
            "upload the text as a file instead"
        )
        return error_page(request, status_of(exception), message)
    if isinstance(exception, DisallowedHost):
        message = "the Host header names a host this server does not answer for"
        return error_page(request, status_of(exception), message)
    return error_page(request, 400, "the request could not be read")


def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """A form posted without a valid CSRF token: usually a page left open too long."""
    message = "the form has expired or came from another site; reload the page and try again"
    return error_page(request, 403, message)


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A page the caller may not use (the admin's forms for records that are read-only)."""
    return error_page(request, 403, "you are not allowed to do that")


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """A URL that names no page."""
    if is_api_path(request.path):
        return error_response(404, f"there is no API endpoint at {request.path}")
    return error_page(request, 404, f"there is no page at {request.path}")


def server_error(request: HttpRequest) -> HttpResponse:
    """An error outside the views (they answer their own, with a reference)."""
    return error_page(request, 500, "something went wrong on the server; try again later")
