"""Showing a private run to others, read-only: with named users, or by a link.

* **With a user**, by user name: the run appears in their "shared with me" list, and they may
  read it (its page, status, log, results, files) as its owner does.
* **By link**: ``/shared/<token>/``, a random token of 32 bytes. Whoever opens it may read the
  run from that browser session on (the session keeps the token; the API answers
  ``GET /api/v1/shared/<token>`` to programs). Revoking the link deletes the token: the link,
  and every session that opened it, then meet 404 again.

Only a signed-in user's run can be shared (a run submitted without signing in is readable by
whoever holds its address already), and only its owner and staff may share it, see its shares
and revoke them. Nothing else changes: cancel, rerun, delete and pin stay theirs, and a
caller who may not see the run meets 404 as before.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from gristmill.app.service import Service
from gristmill.errors import NotFoundError, PermissionDeniedError, SubmissionError
from gristmill.server.access import SHARE_TOKENS_KEY, Caller, owned_run
from gristmill.server.links import site_root
from gristmill.server.models import RunShare


@dataclass(frozen=True)
class Shares:
    """Who a run is shared with."""

    link_token: str | None
    """The share link's token, or ``None`` if it has no link."""
    link_created_at: datetime | None
    users: list[tuple[str, datetime]]
    """User names, with when the run was shared with each."""


def link_path(token: str) -> str:
    """The path of a share link."""
    return f"{site_root()}shared/{token}/"


def shared_with(caller: Caller, run_id: str) -> bool:
    """Whether the run was shared with ``caller``: by name, or by a link their session
    opened that has not been revoked."""
    if not caller.signed_in and not caller.share_tokens:
        return False
    shares = RunShare.objects.filter(run_id=run_id)
    if caller.user_id is not None and shares.filter(user_id=caller.user_id).exists():
        return True
    return bool(caller.share_tokens) and shares.filter(token__in=caller.share_tokens).exists()


REMEMBERED = 50
"""The most share links one session keeps (the newest)."""


def remember(request: HttpRequest, token: str) -> None:
    """Let the request's browser session read the run of the share link ``token`` from now
    on (until the link is revoked). Programs calling with an API token have no session."""
    session = getattr(request, "session", None)
    if session is None or "Authorization" in request.headers:
        return
    kept = [t for t in session.get(SHARE_TOKENS_KEY, []) if t != token]
    session[SHARE_TOKENS_KEY] = [*kept, token][-REMEMBERED:]


def run_of_link(token: str) -> str:
    """The id of the run the share link ``token`` shows; :class:`NotFoundError` if there is
    no such link (never made, or revoked)."""
    found = RunShare.objects.filter(token=token).values_list("run_id", flat=True).first()
    if found is None or not token:
        raise NotFoundError("no shared run at this link (it may have been revoked)")
    return str(found)


def _shareable(caller: Caller, service: Service, run_id: str) -> str:
    status = owned_run(caller, run_id, service)
    if status.run.owner_id is None:
        raise PermissionDeniedError(
            "a run submitted without signing in is readable by whoever has its address; "
            "send that instead"
        )
    return status.id


def shares_of(caller: Caller, service: Service, run_id: str) -> Shares:
    """Who the run is shared with (its owner and staff only; 404 for others)."""
    run_id = owned_run(caller, run_id, service).id
    link, created, users = None, None, []
    for share in RunShare.objects.filter(run_id=run_id).select_related("user").order_by("id"):
        if share.token is not None:
            link, created = share.token, share.created_at
        elif share.user is not None:
            users.append((share.user.get_username(), share.created_at))
    return Shares(link, created, users)


def make_link(caller: Caller, service: Service, run_id: str) -> str:
    """The run's share link's token, made now if it has none."""
    run_id = _shareable(caller, service, run_id)
    existing = RunShare.objects.filter(run_id=run_id, token__isnull=False).first()
    if existing is not None and existing.token is not None:
        return existing.token
    token = secrets.token_urlsafe(32)
    RunShare.objects.create(run_id=run_id, token=token, created_at=datetime.now(UTC))
    return token


def revoke_link(caller: Caller, service: Service, run_id: str) -> bool:
    """Remove the run's share link; whether it had one."""
    run_id = _shareable(caller, service, run_id)
    removed, _ = RunShare.objects.filter(run_id=run_id, token__isnull=False).delete()
    return removed > 0


def share_with(caller: Caller, service: Service, run_id: str, username: str) -> None:
    """Share the run with the user called ``username``; :class:`SubmissionError` on the field
    ``username`` if there is no such user, or it is the run's owner."""
    run_id = _shareable(caller, service, run_id)
    model = get_user_model()
    user = model.objects.filter(**{model.USERNAME_FIELD: username.strip()}).first()
    if user is None or not username.strip():
        raise SubmissionError({"username": [f"there is no user named {username.strip()!r}"]})
    if owned_run(caller, run_id, service).run.owner_id == user.pk:
        raise SubmissionError({"username": ["that is the run's owner, who sees it already"]})
    try:
        with transaction.atomic():
            RunShare.objects.create(run_id=run_id, user_id=user.pk, created_at=datetime.now(UTC))
    except IntegrityError:
        pass  # shared with them already


def unshare(caller: Caller, service: Service, run_id: str, username: str) -> bool:
    """Stop sharing the run with ``username``; whether it was shared with them."""
    run_id = _shareable(caller, service, run_id)
    model = get_user_model()
    lookup = {f"user__{model.USERNAME_FIELD}": username}
    removed, _ = RunShare.objects.filter(run_id=run_id, **lookup).delete()
    return removed > 0


def shared_runs(caller: Caller, limit: int = 200) -> list[str]:
    """The ids of the runs shared with ``caller`` by name, newest share first."""
    if caller.user_id is None:
        return []
    rows = RunShare.objects.filter(user_id=caller.user_id).order_by("-created_at", "-id")
    return [str(run_id) for run_id in rows.values_list("run_id", flat=True)[:limit]]
