"""The Celery executor: units run by Celery workers on Redis or RabbitMQ, on any machine.

Imported only with ``GRISTMILL_EXECUTOR=celery`` (it needs the ``celery`` extra). The database
stays the truth and a message is only a doorbell: it carries a unit id and nothing else. The
task claims that unit through the store (lease, heartbeat, fencing, watchdog, cancel doorbell,
time limits and retries are the local worker's own: :class:`~gristmill.executors.worker.Worker`
runs it). A message claims the next queued unit of the worker's queues, which is the unit it
names or one queued before it (and is dropped when nothing is queued). Having finished a unit,
the process claims the next queued unit of its queues in the same transaction (as local workers
do) for up to :data:`CHAIN_SECONDS`, so under load most messages find their own unit done: each
still brings one unit to a free process.

Messages are JSON (never pickle), acknowledged late, one prefetched per process, and re-delivered
when a worker process dies. A lost message only delays work: the reconciler
(:mod:`gristmill.engine.reconciler`) rings again for units queued too long and re-queues units
whose lease expired.

A gristmill queue ``q`` is the Celery queue ``gristmill.q``.
"""

from __future__ import annotations

import atexit
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

from celery import Celery
from celery.signals import setup_logging, worker_process_init

from gristmill.app.service import Service
from gristmill.authoring.registry import Registry
from gristmill.engine.outage import describe
from gristmill.errors import StoreUnavailableError
from gristmill.executors.worker import Worker
from gristmill.settings import Settings
from gristmill.store.records import QueuedUnit

logger = logging.getLogger("gristmill.celery")

TASK = "gristmill.unit"
"""The name of the one task: run unit ``unit_id``."""

QUEUE_PREFIX = "gristmill."

CHAIN_SECONDS = 1.0
"""How long one message may go on claiming further queued units before it is acknowledged (so
that a warm shutdown waits for little more than the running step)."""

PUBLISH_BATCH = 500
"""The most messages the bell's thread sends over one connection checkout."""

BROKER_RETRY_AFTER = 5.0
"""After a failed publish, how long the bell leaves the broker alone (the reconciler rings for
those units once it is back): a broker that is down must not slow every submission."""


def celery_queue(queue: str) -> str:
    """The Celery queue of the gristmill queue ``queue``."""
    return QUEUE_PREFIX + queue


def make_app(broker_url: str) -> Celery:
    """gristmill's Celery app on ``broker_url``: JSON only, late acknowledgement, one message
    prefetched per process, re-delivery when a worker process dies, no results kept."""
    app = Celery("gristmill", broker=broker_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        result_accept_content=["json"],
        task_ignore_result=True,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_default_queue=celery_queue("default"),
        task_create_missing_queues=True,
        task_publish_retry=False,
        broker_connection_timeout=2.0,
        broker_connection_retry_on_startup=True,
        broker_connection_max_retries=None,
        worker_hijack_root_logger=False,
        worker_redirect_stdouts=False,
        worker_send_task_events=False,
        enable_utc=True,
        timezone="UTC",
    )
    app.task(name=TASK, ignore_result=True)(run_unit)
    return app


class CeleryBell:
    """The store's :attr:`~gristmill.store.base.Store.bell` for the Celery executor: one
    message per queued unit.

    Publishing happens on a thread of its own, which sends whatever has gathered meanwhile over
    one connection: the write that queued a unit returns as soon as it has committed, and a burst
    of submissions is published while the next ones are being written. It never raises: a broker
    that is down is logged (once per outage) and left alone for :data:`BROKER_RETRY_AFTER`
    seconds. Units not yet published when the process ends, like those the broker did not take,
    are found by the reconciler."""

    def __init__(self, app: Celery):
        self.app = app
        self._retry_at = 0.0
        self._pid = 0
        self._queue: queue.SimpleQueue[list[QueuedUnit] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def __call__(self, units: Sequence[QueuedUnit]) -> None:
        if units:
            self._start()
            self._queue.put(list(units))

    def _start(self) -> None:
        if self._pid == os.getpid() and self._thread is not None:
            return
        with self._lock:
            if self._pid != os.getpid() or self._thread is None:
                # A forked process gets a publisher of its own (the parent's thread is not here).
                self._pid = os.getpid()
                self._queue = queue.SimpleQueue()
                self._thread = threading.Thread(
                    target=self._publisher, name="gristmill-celery-bell", daemon=True
                )
                self._thread.start()
                atexit.register(self.close)

    def _publisher(self) -> None:
        source = self._queue
        while True:
            batch = source.get()
            if batch is None:
                return
            units = list(batch)
            stop = False
            while len(units) < PUBLISH_BATCH:
                try:
                    more = source.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                units.extend(more)
            self.publish(units)
            if stop:
                return

    def close(self, timeout: float = 5.0) -> None:
        """Publish what is waiting (for up to ``timeout`` seconds), then stop the thread."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._queue.put(None)
        thread.join(timeout)
        self._thread = None

    def publish(self, units: Sequence[QueuedUnit]) -> None:
        """Send one message per unit now, over one connection (never raises)."""
        if time.monotonic() < self._retry_at:
            logger.debug("broker down: %d unit(s) left to the reconciler", len(units))
            return
        try:
            with self.app.producer_or_acquire() as producer:
                for unit in units:
                    self.app.send_task(
                        TASK,
                        args=[unit.unit_id],
                        queue=celery_queue(unit.queue),
                        producer=producer,
                        ignore_result=True,
                    )
        except Exception as error:
            first = self._retry_at == 0.0
            self._retry_at = time.monotonic() + BROKER_RETRY_AFTER
            log = logger.warning if first else logger.debug
            log(
                "the broker is unavailable (%s); %d unit(s) stay queued and are sent again "
                "by the reconciler",
                describe(error),
                len(units),
            )
        else:
            if self._retry_at:
                logger.info("the broker is back")
            self._retry_at = 0.0

    def check(self, timeout: float = 2.0) -> None:
        """Connect to the broker; raises if it cannot be reached within ``timeout`` seconds."""
        with self.app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=timeout)


_apps: dict[str, Celery] = {}


def app_for(broker_url: str) -> Celery:
    """The process's app for ``broker_url`` (one per URL)."""
    if broker_url not in _apps:
        _apps[broker_url] = make_app(broker_url)
    return _apps[broker_url]


def make_bell(settings: Settings) -> CeleryBell:
    """The bell :meth:`Service.from_settings` gives the store with ``GRISTMILL_EXECUTOR=celery``."""
    return CeleryBell(app_for(settings.broker_url))


# -- the worker side -----------------------------------------------------------------------

_make_service: Callable[[], Service] | None = None
"""Builds a worker process's service (set by :func:`celery_worker_main` before the pool forks)."""
_worker: Worker | None = None
_last_end = 0.0
"""When this process last finished a message (monotonic)."""

IDLE_AFTER = 0.05
"""A message that comes this long after the previous one ended finds the process idle."""


def _process_worker() -> Worker:
    global _worker
    if _worker is None:
        make = _make_service or (lambda: Service.from_settings(migrate=False))
        service = make()
        service.store.enable_worker_mode()
        # A step that would not stop ends this pool process only (Celery starts another and
        # re-delivers nothing that matters: the unit was ended or its lease runs out).
        queues = consumed_queues(service.settings, service.registry)
        _worker = Worker(service, queues=queues, exit_on_hard_stop=False)
    return _worker


def _forget_parent_worker(**kwargs: Any) -> None:
    # A pool process builds its own service and worker: never share the parent's connections.
    global _worker
    _worker = None


worker_process_init.connect(_forget_parent_worker, weak=False)


def _keep_logging(**kwargs: Any) -> None:
    """Celery leaves logging as ``gristmill`` set it up (warnings and errors to stderr), in
    the worker and in its pool processes alike."""


setup_logging.connect(_keep_logging, weak=False)


def run_unit(unit_id: int) -> None:
    """The task for unit ``unit_id``: claim the next queued unit of this worker's queues and run
    it, then (for up to :data:`CHAIN_SECONDS`) the next ones; drop the message if nothing is
    queued."""
    worker = _process_worker()
    store = worker.service.store
    try:
        # A message is a doorbell: it claims the next queued unit of this worker's queues (the
        # one it names, or one queued before it). Workers claim their next unit with the end of
        # the current one, so the named unit is usually taken already; claiming by queue makes
        # every message useful, and costs one statement when nothing is queued.
        claims = store.claim(worker.name, queues=worker.queues, lease=worker.lease)
    except StoreUnavailableError as error:
        # The unit stays queued in the database: the reconciler rings for it again.
        logger.warning("unit %s not claimed: %s", unit_id, describe(error))
        return
    if not claims:
        logger.debug("nothing queued for unit %s's message; dropped", unit_id)
        return
    global _last_end
    worker._pending.extend(claims)
    worker._woken = False
    # As a local worker does: in a busy streak, claim the next unit with the end of this one;
    # right after an idle spell the queue is likely empty, and that claim would only delay
    # the end of the unit someone is waiting for.
    started = time.monotonic()
    worker.chaining = started - _last_end < IDLE_AFTER
    stop_chaining = started + CHAIN_SECONDS
    try:
        while worker._pending and not worker.draining:
            if time.monotonic() >= stop_chaining:
                worker.chaining = False
            try:
                worker.run_once()
            except StoreUnavailableError as error:
                # What this process holds stays leased to it; the runner saves it once the
                # database is back, or its lease runs out and the reconciler re-queues it.
                worker._pause(worker.outage.failed(error))
                continue
            worker.outage.recovered()
    finally:
        worker.chaining = True
        worker._release_pending()
        _last_end = time.monotonic()


def consumed_queues(settings: Settings, registry: Registry) -> list[str]:
    """The gristmill queues a worker takes from: ``GRISTMILL_QUEUES`` (``--queue``), or else
    the queues of every pipeline it offers."""
    if settings.queues:
        return list(settings.queues)
    return sorted({"default", *(pipeline.queue for pipeline in registry)})


def celery_worker_main(
    settings: Settings, make_service: Callable[[], Service], queues: Sequence[str]
) -> None:
    """Run a Celery worker (``settings.workers`` prefork processes) on ``queues`` until it is
    told to stop (SIGTERM: a warm shutdown). Call in a process of its own."""
    global _make_service
    _make_service = make_service
    app = app_for(settings.broker_url)
    name = f"gristmill-{os.getpid()}@{socket.gethostname()}"
    app.worker_main(
        [
            "worker",
            "--loglevel=INFO",
            f"--concurrency={settings.workers}",
            "--pool=prefork",
            f"--queues={','.join(celery_queue(q) for q in queues)}",
            f"--hostname={name}",
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
        ]
    )


def _celery_child(
    settings: Settings, queues: Sequence[str]
) -> Callable[[Callable[[], Service], list[str] | None, int], None]:
    """The supervisor's child for the Celery executor: one Celery worker process (with its
    pool), leading its own process group."""

    def child(make_service: Callable[[], Service], _: list[str] | None, parent_pid: int) -> None:
        os.setpgid(0, 0)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        celery_worker_main(settings, make_service, queues)

    return child


def supervise(settings: Settings, registry: Registry) -> None:
    """``gristmill worker`` with the Celery executor: a supervisor that keeps one Celery worker
    (``settings.workers`` processes) running, and runs the reconciler, the heartbeat and the
    prune beside it, until SIGTERM or Ctrl-C."""
    from gristmill.executors.local import Supervisor

    def make_service() -> Service:
        return Service.from_settings(settings, registry=registry, migrate=False)

    queues = consumed_queues(settings, registry)
    Supervisor(
        make_service,
        make_service(),
        workers=1,
        child=_celery_child(settings, queues),
        reported_workers=settings.workers,
    ).run()
