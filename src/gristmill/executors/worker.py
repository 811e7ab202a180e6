"""The worker loop: claim a unit, run it, repeat; wake on the doorbell, drain on SIGTERM."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections.abc import Sequence
from types import FrameType

from gristmill.app.service import Service
from gristmill.engine.ends import PendingEnds
from gristmill.engine.outage import Outage, describe
from gristmill.engine.runner import UnitRunner
from gristmill.engine.watchdog import UnitReporter, Watchdog
from gristmill.errors import StoreUnavailableError
from gristmill.logfields import about
from gristmill.states import RunState, StopReason
from gristmill.store.records import KILLED_MESSAGE, STOPPING, Claim, Failure, NextClaim, Report

logger = logging.getLogger("gristmill.worker")

IDLE_WAIT = 1.0
"""Longest sleep between looks at the queue when no doorbell rings."""

QUICK = 0.02
"""A unit that ran for less than this many seconds is quick: while they are, a busy worker on a
store that writes several ends at once claims :data:`GROUP` units at a time and ends them
together (:mod:`gristmill.engine.ends`)."""

GROUP = 8
"""How many quick units a busy worker claims at a time."""

HANDED_BACK = "its worker before it started, busy with a long unit"
"""Why a unit claimed ahead goes back to the queue (the run's log)."""


def worker_name() -> str:
    """This process's worker id, as recorded on the units it claims."""
    return f"{socket.gethostname()}/{os.getpid()}"


def hard_stop_message(
    reporter: UnitReporter, step_timeout: float | None
) -> tuple[RunState | None, Failure | None]:
    """What a unit ends as when its step would not stop when asked."""
    step = reporter.step
    reason = reporter.cancel_reason
    if reason == StopReason.TIMEOUT:
        return RunState.FAILED, Failure(
            f"step `{step}` ran past its time limit and did not stop; its processes were killed"
        )
    if reason == StopReason.CANCELLED:
        return RunState.CANCELLED, Failure(KILLED_MESSAGE, step=step)
    return None, None


class Worker:
    """Runs units until told to stop. One per process."""

    def __init__(
        self,
        service: Service,
        *,
        queues: Sequence[str] | None = None,
        name: str | None = None,
        exit_on_hard_stop: bool = True,
    ):
        settings = service.settings
        self.service = service
        self.queues = (
            list(queues) if queues else (list(settings.queues) if settings.queues else None)
        )
        self.name = name or worker_name()
        self.lease = settings.lease_seconds
        self.draining = False
        self.exit_on_hard_stop = exit_on_hard_stop
        self.outage = Outage(logger)
        """Shared by the loop and the runner, so that an outage is logged once."""
        self.watchdog = Watchdog(
            service.store,
            lease=self.lease,
            kill_grace=settings.kill_grace,
            hard_stop=self._hard_stop,
        )
        self.runner = UnitRunner(
            service.store,
            service.registry,
            service.storage,
            watchdog=self.watchdog,
            lease=self.lease,
            outage=self.outage,
            fetch_timeout=settings.fetch_timeout,
            fetch_allow=settings.fetch_allow,
        )
        self._next_reap = 0.0
        self._pending: list[Claim] = []
        self._pending_lock = threading.Lock()
        """Guards :attr:`_pending`: the watchdog hands them back when a unit runs long."""
        self._woken = True
        self._quick = False
        """Whether the last unit was quick (see :data:`QUICK`)."""
        self.chaining = True
        """Whether a busy worker claims its next unit with the end of the current one."""
        self.ends = PendingEnds(service.store) if service.store.groups_ends else None
        """The ends of quick units not written yet (None: each unit's end is written alone)."""
        self.watchdog.ends = self.ends
        self.watchdog.long_unit = self._hand_back_pending
        self.parent_pid: int | None = None
        """If set, stop (drain) when this process is no longer our parent: no orphans."""

    def _hard_stop(self, claim: Claim, reporter: UnitReporter) -> None:
        store = self.service.store
        try:
            if self.ends is not None:
                self.ends.write()  # the units run before this one, before the process goes
            with reporter.write_lock:
                if reporter.cancel_reason == StopReason.DRAIN:
                    store.release(claim, reporter.take())
                else:
                    state, failure = hard_stop_message(reporter, None)
                    if state is not None:
                        report = reporter.take()
                        message = failure.message if failure else ""
                        report.logs.append((time.time(), reporter.step, "system", message))
                        store.finish(claim, state, report, failure)
        except StoreUnavailableError as error:
            # The step is stopped all the same; its lease runs out and the unit is retried.
            logger.warning("unit of run %s not ended: %s", claim.run_id, describe(error))
        logger.error(
            "step %s of run %s did not stop (%s); killing it",
            reporter.step,
            claim.run_id,
            reporter.cancel_reason,
        )
        if self.exit_on_hard_stop:
            # The worker leads its own process group: this kills the step's processes too.
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os._exit(70)

    def _on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        # Only set flags here: touching the database from a signal handler could interrupt a
        # query on the same connection and deadlock. An idle wait ends within IDLE_WAIT.
        if not self.draining:
            self.draining = True
            self.watchdog.drain(self.service.settings.drain_seconds)

    def install_signal_handlers(self) -> None:
        signal.signal(signal.SIGTERM, self._on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    def run_once(self) -> bool:
        """Run one unit if there is one (claimed before, or claimed now); return whether there
        was.

        In a busy streak, the next unit is claimed in the same transaction that ends this one.
        Right after an idle wake-up it is not: the queue is likely empty, and the extra claim
        would only delay the end of the unit someone is waiting for. While units are quick, a
        store that writes several ends at once (:attr:`Store.groups_ends`) has them claimed
        :data:`GROUP` at a time and their ends kept, then written together with the next claim.
        """
        store = self.service.store
        busy = bool(self._pending) or not self._woken
        self._woken = False
        grouping = self.ends is not None and busy and self._quick and not self.draining
        if not self._pending and self.ends is not None and len(self.ends):
            self._write_ends()  # kept from before an outage, or left by the watchdog
        if not self._pending:
            claims = store.claim(
                self.name, queues=self.queues, lease=self.lease, limit=GROUP if grouping else 1
            )
            with self._pending_lock:
                self._pending.extend(claims)
        with self._pending_lock:
            if not self._pending:
                return False
            claim = self._pending.pop(0)
            ahead = bool(self._pending)
        then_claim = None
        if busy and self.chaining and not self.draining and not ahead and not grouping:
            then_claim = NextClaim(self.name, self.queues, self.lease)
        self.runner.keep_ends = self.ends if grouping else None
        started = time.monotonic()
        try:
            with about(run_id=claim.run_id):
                self.runner.run(claim, then_claim)
        finally:
            self.runner.keep_ends = None
        self._quick = time.monotonic() - started < QUICK
        if then_claim is not None:
            with self._pending_lock:
                self._pending.extend(then_claim.claims)
        # Kept ends go out once nothing claimed is left, or a unit was not quick, or they
        # have waited long enough.
        ends = self.ends
        if ends is not None and len(ends) and (not self._pending or not self._quick or ends.due()):
            self._write_ends()
        return True

    def _write_ends(self) -> None:
        """Write the kept ends, claiming the next units with them when none is claimed."""
        assert self.ends is not None
        then_claim = None
        if not self._pending and self.chaining and not self.draining:
            limit = GROUP if self._quick else 1
            then_claim = NextClaim(self.name, self.queues, self.lease, limit=limit)
        self.ends.write(then_claim)
        if then_claim is not None:
            with self._pending_lock:
                self._pending.extend(then_claim.claims)

    def _hand_back_pending(self) -> None:
        """A unit runs long (the watchdog says): give the units claimed ahead of it back to the
        queue, for other workers, rather than hold them (and their leases) behind it."""
        with self._pending_lock:
            pending, self._pending = self._pending, []
        self._release(pending, why=HANDED_BACK)

    def _release_pending(self) -> None:
        # A draining worker writes what it ran, and hands back what it claimed but did not
        # start.
        if self.ends is not None and len(self.ends):
            try:
                self.ends.write()
            except StoreUnavailableError as error:
                # Their leases run out instead, and the units are done again.
                logger.warning("ended units not written: %s", describe(error))
        with self._pending_lock:
            pending, self._pending = self._pending, []
        self._release(pending)

    def _release(self, claims: list[Claim], *, why: str = STOPPING) -> None:
        try:
            while claims:
                self.service.store.release(claims[0], Report(), why=why)
                claims.pop(0)
        except StoreUnavailableError as error:
            # Their leases run out instead, and a reaper hands them back.
            logger.warning("claimed units not handed back: %s", describe(error))

    def _idle(self) -> None:
        """Reap expired leases when due, then wait for the doorbell (or IDLE_WAIT)."""
        now = time.monotonic()
        back = self.outage.back_for()
        # After an outage, leases that ran out while nobody could renew them get one lease to
        # be renewed before they count as lost.
        if now >= self._next_reap and (back is None or back >= self.lease):
            self._next_reap = now + self.lease / 2
            self.service.store.reap()
        if not self.draining:
            self.service.store.wait_for_work(IDLE_WAIT)
            self._woken = True

    def run(self) -> None:
        """Work until SIGTERM (with :meth:`install_signal_handlers`) or :attr:`draining`.

        A database outage does not stop it: it backs off, tries again until the database is
        back, and carries on (logging the outage once, and its end).
        """
        try:
            while not self.draining:
                if self.parent_pid is not None and os.getppid() != self.parent_pid:
                    logger.warning("supervisor %s is gone; stopping", self.parent_pid)
                    break
                try:
                    worked = self.run_once()
                    if not worked:
                        self._idle()
                except StoreUnavailableError as error:
                    # Nothing can be claimed or saved: wait, then try again. What this worker
                    # holds stays leased to it; the runner saves it once the database is back.
                    self._pause(self.outage.failed(error))
                    continue
                self.outage.recovered()
        finally:
            self._release_pending()
            self.watchdog.stop()
            self.service.store.close()

    def _pause(self, seconds: float) -> None:
        # Sleeps in short slices so that SIGTERM is acted on promptly.
        deadline = time.monotonic() + seconds
        while not self.draining and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(left, 0.1))
