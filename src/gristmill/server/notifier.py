"""Sending the notifications of ended runs (see :mod:`gristmill.server.notifications` for
how they are recorded).

Every ``gristmill serve`` (a thread of its web server, :func:`start_thread`) and every
``gristmill worker`` (a process beside its workers, :func:`start_process`) runs a
:class:`Notifier`: it wakes when a run ends (the ``done`` doorbell, at most every
:data:`LOOK_GAP` seconds) and at least every :data:`LOOK_EVERY` seconds, takes each pending
notification whose run has ended under a lease (a conditional update: one sender wins), sends
it (:mod:`gristmill.server.deliveries`), and logs the attempt
(:class:`~gristmill.server.models.DeliveryAttempt`). A failed attempt is tried again after
:attr:`~gristmill.settings.Settings.notify_backoff` seconds, doubling each time, up to
:attr:`~gristmill.settings.Settings.notify_attempts` attempts. A sender that dies mid-send
leaves its notification pending; its lease runs out and another sender (or the same one,
restarted) sends it. Delivery is therefore at least once: each call carries its
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
from multiprocessing.process import BaseProcess

from django.db import close_old_connections, transaction
from django.db.models import Q

from gristmill.app.service import Service
from gristmill.engine.fetcher import FetchPolicy
from gristmill.errors import InternalErrorRef
from gristmill.server.deliveries import Outcome, send
from gristmill.server.models import DeliveryAttempt, Notification
from gristmill.server.notifications import FAILED, PENDING, SENT, TERMINAL
from gristmill.settings import parse_networks

logger = logging.getLogger("gristmill.notifications")

LOOK_EVERY = 2.0
"""Most seconds between two looks for due notifications (the doorbell wakes senders sooner)."""
BATCH = 50
LOOK_GAP = 0.2
"""Fewest seconds between two looks: runs ending in a burst (thousands a second) are looked at
together, instead of costing two queries each (a quarter of the CPU the workers had)."""


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
                looked = time.monotonic()
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
            # A rate limit, not synchronisation: rings during the gap are answered by one look.
            stop.wait(max(0.0, looked + LOOK_GAP - time.monotonic()))

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
