"""Telling people when a run ends: by e-mail, and by webhook calls (an outbox).

**When they are recorded.** A run's notifications are written to the database when the run is
submitted (:func:`record`), right after the run itself, by the process that accepted it: the
e-mail its submitter asked for (or wants by default, :class:`~gristmill.server.models.
NotifySettings`), the webhook the submission named, and its pipeline's webhooks. Each waits,
``pending``, until its run has ended. So nothing has to happen when a run ends: the runner is
left as it is, and no crash at the end of a run (a worker killed as it finishes) can lose a
notification, since it was committed before the run could start. Running a run again records
its notifications again (:func:`record_again`).

**Who sends them**: :mod:`gristmill.server.notifier`, in every ``gristmill serve`` and
``gristmill worker``; what is sent: :mod:`gristmill.server.deliveries`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from gristmill.authoring.pipelines import Pipeline
from gristmill.engine.fetcher import check_literal_address, check_url
from gristmill.errors import FetchError, SubmissionError
from gristmill.server.access import Caller
from gristmill.server.models import DeliveryAttempt, Notification, NotifySettings
from gristmill.settings import Settings, parse_networks
from gristmill.states import RunState

logger = logging.getLogger("gristmill.notifications")

EMAIL = "email"
WEBHOOK = "webhook"
PENDING, SENT, FAILED = "pending", "sent", "failed"
TERMINAL = [state.value for state in RunState if state.is_terminal and state != RunState.EXPIRED]
"""The ends that are notified: succeeded, failed, cancelled."""


@dataclass(frozen=True)
class Wishes:
    """What a submission asks for besides the run: ``email`` (``None``: the user's default)
    and a webhook to call when the run ends."""

    email: bool | None = None
    webhook_url: str | None = None


def email_enabled(settings: Settings) -> bool:
    """Whether this server sends e-mail: ``GRISTMILL_EMAIL_HOST`` is set, or the Django
    project gristmill runs in sets ``EMAIL_BACKEND`` itself."""
    from django.conf import settings as django_settings

    overridden = django_settings.is_overridden("EMAIL_BACKEND")  # type: ignore[misc]
    return bool(settings.email_host) or bool(overridden)


def check_wishes(settings: Settings, caller: Caller, wishes: Wishes) -> Wishes:
    """``wishes`` with the webhook's URL normalised, if they can be honoured; otherwise
    :class:`SubmissionError` with a message per field (``notify_email``, ``webhook_url``),
    before anything is stored."""
    problems: dict[str, list[str]] = {}
    if wishes.email:
        if not email_enabled(settings):
            problems["notify_email"] = [
                "this server sends no e-mail (its administrator has not set GRISTMILL_EMAIL_HOST)"
            ]
        elif not caller.signed_in:
            problems["notify_email"] = ["sign in to be e-mailed when the run ends"]
        elif not user_email(caller.user_id):
            problems["notify_email"] = ["your account has no e-mail address to write to"]
    url = wishes.webhook_url
    if url is not None:
        try:
            url = check_url(url)
            check_literal_address(url, parse_networks(",".join(settings.fetch_allow)))
        except FetchError as error:
            problems["webhook_url"] = [str(error)]
        else:
            if not settings.webhook_secret:
                problems["webhook_url"] = [
                    "this server cannot sign webhook calls (its administrator has not set "
                    "GRISTMILL_WEBHOOK_SECRET)"
                ]
    if problems:
        raise SubmissionError(problems)
    return Wishes(wishes.email, url)


def user_email(user_id: int | None) -> str:
    from django.contrib.auth import get_user_model

    if user_id is None:
        return ""
    model = get_user_model()
    field = model.get_email_field_name()
    found = model.objects.filter(pk=user_id).values_list(field, flat=True).first()
    return str(found or "")


def wants_email(user_id: int | None) -> bool:
    """The user's default: whether their runs e-mail them when they end."""
    if user_id is None:
        return False
    return NotifySettings.objects.filter(user_id=user_id, email_runs=True).exists()


def record(
    settings: Settings, run_id: str, pipeline: Pipeline, caller: Caller, wishes: Wishes
) -> None:
    """Write the notifications of the run ``run_id``, just submitted by ``caller`` with
    ``wishes`` (already checked by :func:`check_wishes`), to be sent when it ends."""
    record_many(settings, [run_id], pipeline, caller, [wishes])


def record_many(
    settings: Settings,
    run_ids: Sequence[str],
    pipeline: Pipeline,
    caller: Caller,
    wishes: Sequence[Wishes],
) -> None:
    """:func:`record` for runs submitted together (a bulk submission), each with its own
    ``wishes``, in one insert: each run also calls its pipeline's and the site's webhooks."""
    default: bool | None = None  # the user's setting, looked up once if an entry needs it
    address: str | None = None
    rows: list[tuple[str, str, str, str]] = []
    for run_id, wish in zip(run_ids, wishes, strict=True):
        email, origin = wish.email, "run"
        if email is None:
            if default is None:
                default = wants_email(caller.user_id) and email_enabled(settings)
            email, origin = default, "user"
        if email and address is None:
            address = user_email(caller.user_id)
        if email and address:
            rows.append((run_id, EMAIL, address, origin))
        if wish.webhook_url:
            rows.append((run_id, WEBHOOK, wish.webhook_url, "run"))
        rows.extend((run_id, WEBHOOK, url, "pipeline") for url in pipeline.webhooks)
        rows.extend((run_id, WEBHOOK, url, "site") for url in settings.webhooks)
    _create(rows)


def record_again(run_id: str) -> None:
    """Notify the same people again when the run, queued again, ends again."""
    seen = Notification.objects.filter(run_id=run_id).values_list("channel", "target", "origin")
    _create([(run_id, *row) for row in dict.fromkeys(seen)])


def _create(rows: list[tuple[str, str, str, str]]) -> None:
    """Insert pending notifications: (run id, channel, target, origin) each."""
    if not rows:
        return
    now = time.time()
    Notification.objects.bulk_create(
        Notification(
            run_id=run_id,
            channel=channel,
            target=target,
            origin=origin,
            next_at=now,
            created_at=now,
        )
        for run_id, channel, target, origin in rows
    )


@dataclass(frozen=True)
class Attempt:
    number: int
    at: float
    status_code: int | None
    error: str


@dataclass(frozen=True)
class Delivery:
    """A notification as the run's page and the API show it, with its attempts."""

    id: int
    channel: str
    target: str
    origin: str
    state: str
    attempts: list[Attempt]


HIDDEN_TARGETS = {"pipeline": "the pipeline's webhook", "site": "the site's webhook"}
"""What others than staff see instead of the URL of a pipeline's or the site's webhook (which
may hold a key)."""


def deliveries(run_id: str, *, staff: bool) -> list[Delivery]:
    """The run's notifications and their attempts, oldest first. Only ``staff`` see the URLs
    of the pipeline's and the site's webhooks; others see :data:`HIDDEN_TARGETS` instead."""
    # The notifications first, then their attempts: an attempt is logged in the transaction
    # that moves its notification on, so a notification read as sent has its last attempt
    # among those read after it (read the other way round, it could be missing).
    rows = list(Notification.objects.filter(run_id=run_id).order_by("id"))
    logged: dict[int, list[Attempt]] = {}
    for attempt in DeliveryAttempt.objects.filter(notification__run_id=run_id).order_by("id"):
        logged.setdefault(attempt.notification_id, []).append(
            Attempt(attempt.number, attempt.at, attempt.status_code, attempt.error)
        )
    shown = []
    for row in rows:
        attempts, target = logged.get(row.id, []), row.target
        if row.origin in HIDDEN_TARGETS and not staff:
            target = HIDDEN_TARGETS[row.origin]
            attempts = [replace(a, error=a.error.replace(row.target, target)) for a in attempts]
        shown.append(Delivery(row.id, row.channel, target, row.origin, row.state, attempts))
    return shown
