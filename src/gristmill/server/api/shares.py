"""Sharing a run (its link, named users), the runs shared with the caller, a run's
notifications and their delivery log, and the caller's notification settings.

Who may do what is decided in :mod:`gristmill.server.sharing` and
:mod:`gristmill.server.notifications`; a run the caller may not act on answers 404.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.http import HttpRequest, HttpResponse
from ninja import Router, Status
from pydantic import BaseModel, Field

from gristmill.app.service import default_service
from gristmill.app.submission import get_run
from gristmill.errors import NotFoundError, SignInRequiredError
from gristmill.server import notifications, sharing
from gristmill.server.access import owned_run
from gristmill.server.api.auth import caller_of
from gristmill.server.api.bodies import JSON, json_body
from gristmill.server.api.runs import run_out
from gristmill.server.api.schemas import ErrorOut, Out, RunOut
from gristmill.server.deliveries import absolute
from gristmill.server.links import run_page
from gristmill.server.models import NotifySettings

router = Router(tags=["sharing and notifications"])

_REFUSED = {401: ErrorOut, 403: ErrorOut, 404: ErrorOut}


class LinkOut(Out):
    token: str
    url: str = Field(description="The share link: whoever opens it may read the run.")
    created_at: datetime | None


class SharedUserOut(Out):
    username: str
    shared_at: datetime


class SharesOut(Out):
    link: LinkOut | None = Field(description="The run's share link, if it has one.")
    users: list[SharedUserOut]


class SharedRunOut(Out):
    id: str
    pipeline: str
    state: str
    created_at: datetime
    url: str


class AttemptOut(Out):
    number: int
    at: datetime
    status_code: int | None = Field(description="What the webhook's server answered.")
    error: str = Field(description="Why the attempt failed; empty if it did not.")


class NotificationOut(Out):
    id: int
    channel: str = Field(description="email or webhook")
    target: str = Field(
        description="The e-mail address or the webhook's URL (a pipeline's or the site's: "
        "staff only)."
    )
    origin: str = Field(
        description="run (asked at submission), user (their setting), pipeline or site"
    )
    state: str = Field(description="pending, sent or failed (after its last attempt)")
    attempts: list[AttemptOut]


class NotifySettingsIn(BaseModel):
    email_runs: bool = Field(description="E-mail me when my runs end, unless a run says not to.")


class NotifySettingsOut(Out):
    email_runs: bool
    email: str = Field(description="The address written to (the account's).")
    email_available: bool = Field(description="Whether this server sends e-mail at all.")


def _shares(run_id: str, shares: sharing.Shares) -> SharesOut:
    link = None
    if shares.link_token is not None:
        settings = default_service().settings
        path = sharing.link_path(shares.link_token)
        link = LinkOut(
            token=shares.link_token, url=absolute(settings, path), created_at=shares.link_created_at
        )
    users = [SharedUserOut(username=name, shared_at=at) for name, at in shares.users]
    return SharesOut(link=link, users=users)


@router.get("/runs/{run_id}/shares", response={200: SharesOut, **_REFUSED})
def get_shares(request: HttpRequest, run_id: str) -> SharesOut:
    """Who the run is shared with: its link and the users (its owner and staff only)."""
    shares = sharing.shares_of(caller_of(request), default_service(), run_id)
    return _shares(run_id, shares)


@router.post("/runs/{run_id}/shares/link", response={200: SharesOut, **_REFUSED})
def make_link(request: HttpRequest, run_id: str) -> SharesOut:
    """Give the run a share link (the same one if it has one already): whoever holds it may
    read the run, nothing more. 403 for a run submitted without signing in."""
    caller, service = caller_of(request), default_service()
    sharing.make_link(caller, service, run_id)
    return _shares(run_id, sharing.shares_of(caller, service, run_id))


@router.delete("/runs/{run_id}/shares/link", response={204: None, **_REFUSED})
def revoke_link(request: HttpRequest, run_id: str) -> HttpResponse:
    """Revoke the run's share link: it answers 404 from now on, as do the sessions that
    opened it."""
    if not sharing.revoke_link(caller_of(request), default_service(), run_id):
        raise NotFoundError("the run has no share link")
    return HttpResponse(status=204)


@router.put(
    "/runs/{run_id}/shares/users/{username}",
    response={200: SharesOut, 400: ErrorOut, **_REFUSED},
)
def share_with(request: HttpRequest, run_id: str, username: str) -> SharesOut:
    """Share the run with a user, who then finds it in their runs shared with them."""
    caller, service = caller_of(request), default_service()
    sharing.share_with(caller, service, run_id, username)
    return _shares(run_id, sharing.shares_of(caller, service, run_id))


@router.delete("/runs/{run_id}/shares/users/{username}", response={204: None, **_REFUSED})
def unshare(request: HttpRequest, run_id: str, username: str) -> HttpResponse:
    """Stop sharing the run with a user."""
    if not sharing.unshare(caller_of(request), default_service(), run_id, username):
        raise NotFoundError(f"the run is not shared with {username!r}")
    return HttpResponse(status=204)


@router.get("/shared/runs", response={200: list[SharedRunOut], 401: ErrorOut})
def shared_runs(request: HttpRequest) -> list[SharedRunOut]:
    """The runs other users shared with the caller, newest share first."""
    caller = caller_of(request)
    if not caller.signed_in:
        raise SignInRequiredError("sign in to see the runs shared with you")
    service = default_service()
    found = []
    for run_id in sharing.shared_runs(caller):
        run = get_run(run_id, service=service).run
        found.append(
            SharedRunOut(
                id=run.id,
                pipeline=run.pipeline,
                state=str(run.state),
                created_at=run.created_at,
                url=run_page(run.id),
            )
        )
    return found


@router.get("/shared/{token}", response={200: RunOut, 404: ErrorOut})
def shared_run(request: HttpRequest, token: str) -> RunOut:
    """The run a share link shows (read-only); 404 once the link is revoked. A browser that
    opens the link's page may read the run's log, results and files from then on."""
    run_id = sharing.run_of_link(token)
    sharing.remember(request, token)
    return run_out(caller_of(request), get_run(run_id, service=default_service()))


@router.get("/runs/{run_id}/notifications", response={200: list[NotificationOut], **_REFUSED})
def run_notifications(request: HttpRequest, run_id: str) -> list[NotificationOut]:
    """The run's notifications (e-mails, webhook calls) and each attempt to send them, with
    what the other end answered (its owner and staff only)."""
    caller = caller_of(request)
    run_id = owned_run(caller, run_id, default_service()).id
    return [
        NotificationOut(
            id=delivery.id,
            channel=delivery.channel,
            target=delivery.target,
            origin=delivery.origin,
            state=delivery.state,
            attempts=[
                AttemptOut(
                    number=attempt.number,
                    at=datetime.fromtimestamp(attempt.at, UTC),
                    status_code=attempt.status_code,
                    error=attempt.error,
                )
                for attempt in delivery.attempts
            ],
        )
        for delivery in notifications.deliveries(run_id, staff=caller.is_staff)
    ]


_SETTINGS_DOC = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": NotifySettingsIn.model_json_schema()}},
    }
}


def _settings_of(user_id: int) -> NotifySettingsOut:
    return NotifySettingsOut(
        email_runs=notifications.wants_email(user_id),
        email=notifications.user_email(user_id),
        email_available=notifications.email_enabled(default_service().settings),
    )


def _user_id(request: HttpRequest) -> int:
    user_id = caller_of(request).user_id
    if user_id is None:
        raise SignInRequiredError("sign in to change your notification settings")
    return user_id


@router.get("/account/notifications", response={200: NotifySettingsOut, 401: ErrorOut})
def get_notify_settings(request: HttpRequest) -> NotifySettingsOut:
    """The caller's notification settings."""
    return _settings_of(_user_id(request))


@router.put(
    "/account/notifications",
    response={200: NotifySettingsOut, 400: ErrorOut, 401: ErrorOut, 415: ErrorOut, 422: ErrorOut},
    openapi_extra=_SETTINGS_DOC,
)
def put_notify_settings(request: HttpRequest) -> Status[NotifySettingsOut]:
    """Change the caller's notification settings: ``{"email_runs": true}`` e-mails them when
    each of their runs ends, unless its submission says ``notify_email: false``."""
    user_id = _user_id(request)
    body = json_body(request, NotifySettingsIn)
    NotifySettings.objects.update_or_create(
        user_id=user_id, defaults={"email_runs": body.email_runs}
    )
    return Status(200, _settings_of(user_id))
