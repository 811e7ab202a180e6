"""The local executor: a supervisor that keeps N worker processes alive on this machine.

Each worker is a forked process that leads its own process group (so a step's processes can be
killed with it). When a worker dies, the supervisor hands its units back at once, naming the
cause ("killed by signal SIGKILL"), and starts a replacement; a unit that keeps killing its
workers fails after the attempt limit while other runs keep flowing. SIGTERM or Ctrl-C drains:
workers stop claiming, finish or release what they hold, and exit.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import time
from collections.abc import Callable
from multiprocessing.connection import wait as wait_for
from multiprocessing.process import BaseProcess
from types import FrameType

from gristmill.app.service import Service
from gristmill.engine import retention
from gristmill.engine.outage import Outage, describe
from gristmill.engine.reconciler import Reconciler
from gristmill.errors import StoreUnavailableError

logger = logging.getLogger("gristmill.supervisor")

RESTART_BACKOFF = (0.0, 0.5, 1.0, 2.0, 5.0)
"""Delays before restarting a worker slot that keeps dying quickly."""


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "vanished"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"


def _child_main(
    make_service: Callable[[], Service], queues: list[str] | None, parent_pid: int
) -> None:
    from gristmill.executors.worker import Worker

    os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    service = make_service()
    service.store.enable_worker_mode()
    worker = Worker(service, queues=queues)
    worker.parent_pid = parent_pid
    worker.install_signal_handlers()
    worker.run()


class Supervisor:
    """Starts, watches and restarts local worker processes."""

    def __init__(
        self,
        make_service: Callable[[], Service],
        service: Service,
        *,
        workers: int,
        queues: list[str] | None = None,
        child: Callable[[Callable[[], Service], list[str] | None, int], None] | None = None,
        reported_workers: int | None = None,
    ):
        """``make_service`` builds a worker's service after the fork; ``service`` is the
        supervisor's own (used to hand back a dead worker's units and to run the reconciler).

        ``child`` is what each worker process runs (default: a gristmill worker loop), called
        with ``make_service``, ``queues`` and this process's id; ``reported_workers`` is the
        worker count the heartbeat reports (default: the live processes)."""
        service.require_shared_store("local worker processes")
        self.make_service = make_service
        self.service = service
        self.workers = workers
        self.queues = queues
        self.stopping = False
        self.child = child or _child_main
        self.reported_workers = reported_workers
        self.reconciler = Reconciler(service.store, stale_after=service.settings.reconcile_after)
        self._slots: list[BaseProcess | None] = [None] * workers
        self._failures = [0] * workers
        self._started_at = [0.0] * workers
        self._context = multiprocessing.get_context("fork")
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_w, False)
        self.outage = Outage(logger)
        self._dead: list[tuple[str, str]] = []
        """(worker name, how it died) of dead workers whose units are not handed back yet."""
        self._reap_every = min(service.settings.lease_seconds / 2, self.reconciler.interval)
        self._next_reap = time.monotonic() + self._reap_every
        self._next_prune = time.monotonic()  # at start, then every prune_interval
        self._next_housekeeping = time.monotonic()
        self.name = f"{socket.gethostname()}/{os.getpid()}"
        """This supervisor's name in the heartbeats the health check reads."""
        self._started = time.time()
        self._next_beat = time.monotonic()

    def _close_connections(self) -> None:
        # Never fork with open database connections: the child would share them.
        self.service.store.before_fork()

    def _start(self, slot: int) -> None:
        self._close_connections()
        process = self._context.Process(
            target=self.child,
            args=(self.make_service, self.queues, os.getpid()),
            name=f"gristmill-worker-{slot}",
            daemon=False,
        )
        process.start()
        self._slots[slot] = process
        self._started_at[slot] = time.monotonic()

    @property
    def pids(self) -> list[int]:
        """The process ids of the live workers."""
        return [p.pid for p in self._slots if p is not None and p.pid is not None]

    def _handle_exit(self, slot: int, process: BaseProcess) -> None:
        reason = _describe_exit(process.exitcode)
        name = f"{socket.gethostname()}/{process.pid}"
        if not self.stopping:
            logger.warning("worker %s %s; its units are handed back", process.pid, reason)
        # Handed back by the next housekeeping pass, which rides out a database outage.
        self._dead.append((name, reason))
        self._slots[slot] = None
        quick = time.monotonic() - self._started_at[slot] < 10
        self._failures[slot] = self._failures[slot] + 1 if quick else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_w, b"!")

    def run(self) -> None:
        """Run until SIGTERM or SIGINT, then drain and return.

        A database outage does not stop it: dead workers are still replaced, and what needs the
        database (handing back their units, reaping, pruning) waits until it is back.
        """
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        for slot in range(self.workers):
            self._start(slot)
        restart_at: dict[int, float] = {}
        parent = os.getppid()
        while not self.stopping:
            if os.getppid() != parent:
                logger.warning("the process that started the workers is gone; stopping")
                break
            now = time.monotonic()
            # Wake at least every second, to notice a parent that died.
            wake = min([self._next_housekeeping, now + 1.0, *restart_at.values()])
            live = {p.sentinel: (slot, p) for slot, p in enumerate(self._slots) if p is not None}
            ready = wait_for([*live, self._wake_r], timeout=max(0.0, wake - now))
            for sentinel in ready:
                if sentinel in live:
                    slot, process = live[sentinel]
                    process.join()
                    self._handle_exit(slot, process)
                    delay = RESTART_BACKOFF[min(self._failures[slot], len(RESTART_BACKOFF) - 1)]
                    restart_at[slot] = time.monotonic() + delay
                    self._next_housekeeping = time.monotonic()
            now = time.monotonic()
            for slot, at in list(restart_at.items()):
                if at <= now and not self.stopping:
                    del restart_at[slot]
                    self._start(slot)
            if now >= self._next_housekeeping and not self.stopping:
                self._housekeep(now)
        self.drain()

    def _housekeep(self, now: float) -> None:
        """Hand back dead workers' units, reap expired leases and prune, as each is due; while
        the database is unavailable, only try to reach it again, backing off."""
        lease = self.service.settings.lease_seconds
        store = self.service.store
        try:
            if self.outage.down:
                store.ping()
                self.outage.recovered()
            while self._dead:
                store.release_worker(*self._dead[0])
                self._dead.pop(0)
            # A supervisor of no workers (`gristmill serve` with Celery workers elsewhere)
            # runs the reconciler only: the health check lists supervisors of workers.
            if now >= self._next_beat and store.supports_heartbeats and self.workers:
                workers = len(self.pids)
                if self.reported_workers is not None and workers:
                    workers = self.reported_workers
                store.beat(self.name, workers, self._started)
                self._next_beat = now + lease / 3
            back = self.outage.back_for()
            # Leases that ran out while nobody could renew them get one lease to be renewed
            # before they count as lost: an outage is not the workers' fault.
            if now >= self._next_reap and (back is None or back >= lease):
                # Reaps expired leases and rings again for units queued too long, if no other
                # process on the database is doing it now.
                self.reconciler.run_once()
                self._next_reap = now + self._reap_every
            if now >= self._next_prune:
                self._next_prune = now + self.service.settings.prune_interval
                self._prune()
        except StoreUnavailableError as error:
            self._next_housekeeping = time.monotonic() + self.outage.failed(error)
        else:
            self._next_housekeeping = min(self._next_reap, self._next_prune, self._next_beat)
        finally:
            self._close_connections()

    def _prune(self) -> None:
        """Expire the runs whose retention period is over; never stops the supervisor.

        Raises :class:`StoreUnavailableError` only when the database is unavailable (the prune
        is then due again once it is back)."""
        try:
            pruned = retention.prune(self.service.store, self.service.storage)
        except StoreUnavailableError:
            self._next_prune = time.monotonic()
            raise
        except Exception:
            logger.exception("prune failed")
        else:
            if pruned.expired or pruned.wiped or pruned.failed:
                logger.info(
                    "pruned: %d run(s) expired, files of %d removed, %d failed",
                    pruned.expired,
                    pruned.wiped,
                    pruned.failed,
                )

    def drain(self) -> None:
        """Tell every worker to stop, wait for the grace period, then kill what is left."""
        settings = self.service.settings
        live = [(slot, p) for slot, p in enumerate(self._slots) if p is not None]
        for _, process in live:
            if process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + settings.drain_seconds + settings.kill_grace + 5
        for slot, process in live:
            process.join(max(0.0, deadline - time.monotonic()))
            if process.is_alive() and process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.join()
            self._handle_exit(slot, process)
        store = self.service.store
        try:
            for name, reason in self._dead:
                store.release_worker(name, reason)
            if store.supports_heartbeats:
                store.sign_off(self.name)
        except StoreUnavailableError as error:
            # Their leases run out instead, and another supervisor's reaper hands them back.
            logger.warning("units of stopped workers not handed back: %s", describe(error))
        self._dead.clear()
        self._close_connections()
        self.service.store.close()
