"""Telling people when a run ends: by e-mail, and by webhook calls (an outbox).

**When they are recorded.** A run's notifications are written to the database when the run is
submitted (:func:`record`), right after the run itself, by the process that accepted it: the
e-mail its submitter asked for (or wants by default, :class:`~gristmill.server.models.
NotifySettings`), the webhook the submission named, and its pipeline's webhooks. Each waits,
``pending``, until its run has ended. So nothing has to happen when a run ends: the runner is
left as it is, and no crash at the end of a run (a worker killed as it finishes) can lose a
notification, since it was committed before the run could start. Running a run again records
its notifications again (:func:`record_again`).

**Who sends them.** Every ``gristmill serve`` (a thread of its web server) and every
``gristmill worker`` (a process beside its workers) runs a :class:`Notifier`: it wakes when a
run ends (the ``done`` doorbell) and at least every few seconds, takes each pending
notification whose run has ended under a lease (a conditional update: one sender wins), sends
it, and logs the attempt (:class:`~gristmill.server.models.DeliveryAttempt`). A failed attempt is
tried again after :attr:`~gristmill.settings.Settings.notify_backoff` seconds, doubling each
time, up to :attr:`~gristmill.settings.Settings.notify_attempts` attempts. A sender that dies
mid-send leaves its notification pending; its lease runs out and another sender (or the same
one, restarted) sends it. Delivery is therefore at least once: each call carries its
notification's id (``X-Gristmill-Delivery``) for receivers to drop repeats.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from multiprocessing.process import BaseProcess

from django.db import close_old_connections, transaction
from django.db.models import Q

from gristmill.app.service import Service
from gristmill.authoring.pipelines import Pipeline
from gristmill.engine.fetcher import FetchPolicy, check_literal_address, check_url
from gristmill.errors import FetchError, InternalErrorRef, SubmissionError
from gristmill.server.access import Caller
from gristmill.server.deliveries import Outcome, send
from gristmill.server.models import DeliveryAttempt, Notification, NotifySettings
from gristmill.settings import Settings, parse_networks
from gristmill.states import RunState

logger = logging.getLogger("gristmill.notifications")

EMAIL = "email"
WEBHOOK = "webhook"
PENDING, SENT, FAILED = "pending", "sent", "failed"
TERMINAL = [state.value for state in RunState if state.is_terminal and state != RunState.EXPIRED]
"""The ends that are notified: succeeded, failed, cancelled."""
LOOK_EVERY = 2.0
"""Most seconds between two looks for due notifications (the doorbell wakes senders sooner)."""
BATCH = 50


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
    email = wishes.email
    origin = "run"
    if email is None:
        email, origin = wants_email(caller.user_id) and email_enabled(settings), "user"
    address = user_email(caller.user_id) if email else ""
    targets = [(EMAIL, address, origin)] if address else []
    if wishes.webhook_url:
        targets.append((WEBHOOK, wishes.webhook_url, "run"))
    targets.extend((WEBHOOK, url, "pipeline") for url in pipeline.webhooks)
    targets.extend((WEBHOOK, url, "site") for url in settings.webhooks)
    _create(run_id, targets)


def record_again(run_id: str) -> None:
    """Notify the same people again when the run, queued again, ends again."""
    seen = Notification.objects.filter(run_id=run_id).values_list("channel", "target", "origin")
    _create(run_id, list(dict.fromkeys(seen)))


def _create(run_id: str, targets: list[tuple[str, str, str]]) -> None:
    if not targets:
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
        for channel, target, origin in targets
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
    rows = Notification.objects.filter(run_id=run_id).order_by("id")
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


class Notifier:
    """Sends the notifications of ended runs (see the module's docstring)."""

    def __init__(self, service: Service):
        self.service = service
        settings = service.settings
        # A call ends by its timeout; a lease a little longer than two is never cut short.
        self.lease = 2 * settings.notify_timeout + 1
        self.policy = FetchPolicy(
            max_size=64 * 1024,
            timeout=settings.notify_timeout,
            allow=parse_networks(",".join(settings.fetch_allow)),
        )

    def drain(self) -> int:
        """Send every notification due now; return how many were attempted."""
        done = 0
        while True:
            now = time.time()
            due = list(
                Notification.objects.filter(
                    state=PENDING, next_at__lte=now, run__state__in=TERMINAL
                )
                .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
                .order_by("next_at")
                .values_list("id", flat=True)[:BATCH]
            )
            taken = [one for one in due if self._take(one)]
            for notification_id in taken:
                self._deliver(notification_id)
            done += len(taken)
            if len(due) < BATCH:
                return done

    def _take(self, notification_id: int) -> bool:
        now = time.time()
        return bool(
            Notification.objects.filter(id=notification_id, state=PENDING)
            .filter(Q(lease_until__isnull=True) | Q(lease_until__lt=now))
            .update(lease_until=now + self.lease)
        )

    def _deliver(self, notification_id: int) -> None:
        notification = Notification.objects.get(id=notification_id)
        run = self.service.store.get_run(str(notification.run_id))
        registry = self.service.registry
        pipeline = registry.get(run.pipeline) if run.pipeline in registry else None
        try:
            outcome = send(self.service.settings, self.policy, notification, run, pipeline)
        except Exception as error:  # a bug, not the other end's fault: count it, say where
            where = f"sending notification {notification.id}"
            reference = InternalErrorRef.log(error, where, logger)
            outcome = Outcome(False, notification.body or "", error=reference.message)
        self._log(notification, outcome)

    def _log(self, notification: Notification, outcome: Outcome) -> None:
        settings = self.service.settings
        now = time.time()
        number = notification.attempts + 1
        if outcome.delivered:
            state, next_at = SENT, notification.next_at
        elif number >= settings.notify_attempts or outcome.final:
            state, next_at = FAILED, notification.next_at
        else:
            state, next_at = PENDING, now + settings.notify_backoff * 2 ** (number - 1)
        with transaction.atomic():
            DeliveryAttempt.objects.create(
                notification_id=notification.id,
                number=number,
                at=now,
                status_code=outcome.status_code,
                error=outcome.error,
            )
            Notification.objects.filter(id=notification.id).update(
                attempts=number,
                state=state,
                next_at=next_at,
                lease_until=None,
                body=outcome.body,
                sent_at=now if outcome.delivered else None,
            )
        if not outcome.delivered:
            logger.warning(
                "%s to %s for run %s, attempt %d: %s",
                notification.channel,
                notification.target,
                notification.run_id,
                number,
                outcome.error or f"answered {outcome.status_code}",
            )

    def run(self, stop: threading.Event) -> None:
        """Send due notifications until ``stop`` is set: whenever a run ends, and at least
        every :data:`LOOK_EVERY` seconds. A database that cannot be reached only delays them."""
        store = self.service.store
        failing = listening = False
        while not stop.is_set():
            try:
                if not listening:  # listen before the first look, so that no ring is missed
                    store.wait_for_done(0)
                    listening = True
                self.drain()
                pause = self._until_due()
            except Exception as error:  # the database away, most likely: try again later
                if not failing:
                    logger.warning("notifications could not be sent: %s; retrying", error)
                failing = True
                close_old_connections()
                stop.wait(LOOK_EVERY)
                continue
            if failing:
                logger.warning("notifications are being sent again")
                failing = False
            try:
                store.wait_for_done(pause)
            except Exception:  # the doorbell's connection lost: the next look says more
                stop.wait(pause)

    def _until_due(self) -> float:
        """Seconds until the next retry of an ended run's notification, at most
        :data:`LOOK_EVERY`."""
        due = (
            Notification.objects.filter(state=PENDING, run__state__in=TERMINAL)
            .order_by("next_at")
            .values_list("next_at", flat=True)
            .first()
        )
        if due is None:
            return LOOK_EVERY
        return min(LOOK_EVERY, max(0.0, due - time.time()))


def start_thread(service: Service) -> tuple[threading.Thread, threading.Event]:
    """Run a :class:`Notifier` in a daemon thread of this process; set the event to stop it."""
    stop = threading.Event()

    def loop() -> None:
        try:
            Notifier(service).run(stop)
        finally:
            from django.db import connections

            connections.close_all()

    thread = threading.Thread(target=loop, name="gristmill-notifier", daemon=True)
    thread.start()
    return thread, stop


def start_process(make_service: Callable[[], Service]) -> BaseProcess:
    """Run a :class:`Notifier` in a child process (forked: call it before starting threads,
    with no database connection open), on the service ``make_service`` builds there. The child
    stops on SIGTERM, and by itself once its parent is gone."""
    process = multiprocessing.get_context("fork").Process(
        target=_process_main, args=(make_service, os.getpid()), name="gristmill-notifier"
    )
    process.start()
    return process


def _process_main(make_service: Callable[[], Service], parent: int) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop.set())
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the parent, which stops us

    def orphaned() -> None:
        while not stop.wait(1.0):
            if os.getppid() != parent:
                stop.set()

    threading.Thread(target=orphaned, name="gristmill-parent-watch", daemon=True).start()
    Notifier(make_service()).run(stop)
