"""Sending one notification of an ended run: an e-mail through Django's SMTP backend (with
``GRISTMILL_EMAIL_*``; or else the Django project's own ``EMAIL_BACKEND``), or a webhook
call, an HTTP POST of a JSON body signed with HMAC-SHA256.

A webhook call goes out under the same rules as a URL input's download
(:func:`gristmill.engine.fetcher.post`): public addresses only (or those in
``GRISTMILL_FETCH_ALLOW``), each redirect checked again, the connection pinned to the checked
address. Its headers:

* ``X-Gristmill-Signature: sha256=<hex>``, the HMAC-SHA256 of the body under the pipeline's
  ``webhook_secret`` or else ``GRISTMILL_WEBHOOK_SECRET``;
* ``X-Gristmill-Delivery``, the notification's id (the same on every attempt);
* ``X-Gristmill-Event: run.ended``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.mail import EmailMessage, get_connection
from django.core.mail.backends.base import BaseEmailBackend
from django.core.mail.backends.smtp import EmailBackend

from gristmill.authoring.pipelines import Pipeline
from gristmill.engine.fetcher import FetchPolicy, post
from gristmill.errors import FetchError
from gristmill.server.models import Notification
from gristmill.settings import Settings
from gristmill.states import RunState
from gristmill.store.records import RunRecord

SIGNATURE_HEADER = "X-Gristmill-Signature"
EVENT = "run.ended"
_OUTCOMES = {
    RunState.SUCCEEDED: "succeeded",
    RunState.FAILED: "failed",
    RunState.CANCELLED: "was cancelled",
}


@dataclass(frozen=True)
class Outcome:
    """How one attempt went."""

    delivered: bool
    body: str
    """What was sent (kept, so that every attempt sends the same)."""
    status_code: int | None = None
    error: str = ""
    final: bool = False
    """Not worth trying again (nothing to sign with)."""


def signature(secret: str, body: bytes) -> str:
    """The ``X-Gristmill-Signature`` value of ``body``: ``sha256=`` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def absolute(settings: Settings, path: str) -> str:
    """``path`` on this site: after ``GRISTMILL_SITE_URL`` if set, else the path alone."""
    return f"{settings.site_url}{path}"


def _links(run_id: str) -> dict[str, str]:
    # Imported here: the API's package imports its routers, and one of them imports this.
    from gristmill.server.api.schemas import run_links

    links = run_links(run_id)
    return {
        "url": links["url"],
        "status_url": links["status_url"],
        "results_url": links["results_url"],
        "outputs_url": links["outputs_url"],
    }


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def payload(settings: Settings, run: RunRecord, title: str) -> dict[str, Any]:
    """The JSON body of a webhook call about the ended ``run``."""
    links = _links(run.id)
    return {
        "event": EVENT,
        "run": {
            "id": run.id,
            "pipeline": run.pipeline,
            "title": title,
            "state": str(run.state),
            "error": run.error_message if run.state == RunState.FAILED else None,
            "created_at": _time(run.created_at),
            "started_at": _time(run.started_at),
            "finished_at": _time(run.finished_at),
            "url": absolute(settings, links["url"]),
            "status_url": absolute(settings, links["status_url"]),
            "results_url": absolute(settings, links["results_url"]),
            "outputs_url": absolute(settings, links["outputs_url"]),
        },
    }


def email_text(settings: Settings, run: RunRecord, title: str) -> tuple[str, str]:
    """The subject and text of the e-mail about the ended ``run``."""
    outcome = _OUTCOMES.get(run.state, str(run.state))
    subject = f"{title}: your run {outcome}"
    lines = [f"Your run of {title} {outcome}."]
    if run.state == RunState.FAILED and run.error_message:
        lines += ["", f"What went wrong: {run.error_message}"]
    lines += ["", f"See it at {absolute(settings, _links(run.id)['url'])}", "", "-- gristmill"]
    return subject, "\n".join(lines) + "\n"


def send(
    settings: Settings,
    policy: FetchPolicy,
    notification: Notification,
    run: RunRecord,
    pipeline: Pipeline | None,
) -> Outcome:
    """Make one attempt to send ``notification`` about the ended ``run``; never raises for a
    problem of the other end (it is the :class:`Outcome`'s ``error``)."""
    title = pipeline.title if pipeline is not None else run.pipeline
    if notification.channel == "email":
        return _email(settings, notification, run, title)
    body = notification.body or json.dumps(payload(settings, run, title), sort_keys=True)
    secret = settings.webhook_secret
    if notification.origin == "pipeline" and pipeline is not None and pipeline.webhook_secret:
        secret = pipeline.webhook_secret
    if not secret:
        return Outcome(
            False,
            body,
            error="no key to sign the call with: set GRISTMILL_WEBHOOK_SECRET",
            final=True,
        )
    data = body.encode()
    headers = [
        ("Content-Type", "application/json"),
        (SIGNATURE_HEADER, signature(secret, data)),
        ("X-Gristmill-Delivery", str(notification.id)),
        ("X-Gristmill-Event", EVENT),
    ]
    try:
        status = post(notification.target, data, headers, policy)
    except FetchError as error:
        return Outcome(False, body, error=str(error))
    if 200 <= status < 300:
        return Outcome(True, body, status_code=status)
    return Outcome(False, body, status_code=status, error=f"the server answered {status}")


def _email(settings: Settings, notification: Notification, run: RunRecord, title: str) -> Outcome:
    subject, text = email_text(settings, run, title)
    body = notification.body or f"{subject}\n\n{text}"
    subject, _, text = body.partition("\n\n")
    connection: BaseEmailBackend = (
        EmailBackend(
            host=settings.email_host,
            port=settings.email_port,
            username=settings.email_user or None,
            password=settings.email_password or None,
            use_tls=settings.email_tls,
            timeout=settings.notify_timeout,
            fail_silently=False,
        )
        if settings.email_host
        else get_connection(fail_silently=False)  # the Django project's own EMAIL_BACKEND
    )
    message = EmailMessage(
        subject, text, settings.email_from, [notification.target], connection=connection
    )
    try:
        message.send()
    except (OSError, ValueError) as error:  # smtplib's errors are OSErrors
        return Outcome(False, body, error=f"the mail server could not take it: {error}")
    return Outcome(True, body)
