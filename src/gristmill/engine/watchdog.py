"""Live reporting and the watchdog that guards a running unit.

The :class:`UnitReporter` buffers what tasks report (log lines, stage, progress) so that a fast
step costs no extra database write: its report goes out with the step's result. The
:class:`Watchdog` thread flushes the buffer while a step runs, renews the lease (the heartbeat),
notices cancellation and lost leases, and enforces the step's time limit: first by asking the
step to stop, then, after a grace period, by calling a hard-stop function that kills the step's
whole process group.

A cancel reaches the watchdog through the store's cancel doorbell (NOTIFY on PostgreSQL, a local
socket on SQLite): the watchdog waits on it instead of sleeping between its looks, and reads its
run's cancel flag when it rings. A lost ring costs at most ``CANCEL_POLL``: the flag is also read
that often while a unit runs, and with every flush.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from gristmill.engine.ends import PendingEnds
from gristmill.states import StopReason
from gristmill.store.base import Store
from gristmill.store.records import Claim, Report

FLUSH_INTERVAL = 0.25
"""Seconds between flushes of pending log lines and progress while a step runs and reports
something; a step that reports nothing costs no flush but the heartbeat."""

TICK = 0.05
"""How often the watchdog looks at the running unit (time limits, pending reports)."""

IDLE_TICK = 0.2
"""How long the watchdog waits at a time while no unit runs."""

CANCEL_POLL = 1.0
"""Seconds between reads of the running unit's cancel flag when no doorbell rang: the most a
lost ring delays a cancel."""

LONG_UNIT = 1.0
"""Seconds after which a running unit counts as long: the units its worker claimed ahead of it
are handed back (:attr:`Watchdog.long_unit`)."""


class UnitReporter:
    """Collects a unit's live status; thread-safe. Implements the context's Reporter."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.write_lock = threading.Lock()
        """Held while a report is written, so log lines keep their order."""
        self._report = Report()
        self._dirty = False
        self.step = ""
        self.cancel_event = threading.Event()
        self.cancel_reason: StopReason | None = None
        self.status = True
        """Whether reports carry the run's status (False for a batch unit)."""

    def begin_step(self, name: str) -> None:
        with self._lock:
            self.step = name
            self._report.current_step = name
            self._report.stage = None
            self._report.progress_done = self._report.progress_total = None

    def log(self, text: str, stream: str) -> None:
        at = time.time()
        with self._lock:
            for line in text.splitlines() or [""]:
                self._report.logs.append((at, self.step, stream, line))
            self._dirty = True

    def stage(self, name: str | None) -> None:
        with self._lock:
            self._report.stage = name
            self._dirty = True

    def progress(self, done: int, total: int | None) -> None:
        with self._lock:
            self._report.progress_done, self._report.progress_total = done, total
            self._dirty = True

    def is_cancelled(self) -> bool:
        return self.cancel_event.is_set()

    def cancel(self, reason: StopReason) -> None:
        """Ask the running step to stop; the first reason given is kept until
        :meth:`clear_cancel`."""
        with self._lock:
            if self.cancel_reason is None:
                self.cancel_reason = reason
        self.cancel_event.set()

    def clear_cancel(self) -> None:
        """Forget a step's time-limit stop once the step has ended."""
        with self._lock:
            self.cancel_reason = None
            self.cancel_event.clear()

    def restore(self, report: Report) -> None:
        """Take back the lines of a report that could not be written, ahead of newer ones."""
        with self._lock:
            self._report.logs[:0] = report.logs
            self._dirty = True

    @property
    def dirty(self) -> bool:
        return self._dirty

    def take(self) -> Report:
        """The current status with the log lines not yet written (which it hands over)."""
        with self._lock:
            report = Report(
                self._report.current_step,
                self._report.stage,
                self._report.progress_done,
                self._report.progress_total,
                self._report.logs,
                status=self.status,
            )
            self._report.logs = []
            self._dirty = False
            return report


@dataclass
class _Guard:
    claim: Claim
    reporter: UnitReporter
    last_write: float
    next_cancel_look: float
    deadline: float | None = None
    timeout: float | None = None
    hard_deadline: float | None = None
    long_at: float | None = None
    """When the unit counts as long (None once :attr:`Watchdog.long_unit` was called)."""


class Watchdog:
    """One thread per worker process that guards whichever unit is running.

    The worker's thread only sets attributes (no locks, no wake-ups) when a unit or a step
    starts; the watchdog looks every ``TICK`` seconds, and at once when the cancel doorbell
    rings. So a fast step costs the watchdog nothing, a time limit is enforced within a tick,
    and a cancel reaches the step within a database read of its request.
    """

    def __init__(
        self,
        store: Store,
        *,
        lease: float,
        kill_grace: float,
        hard_stop: Callable[[Claim, UnitReporter], None],
    ):
        self.store = store
        self.lease = lease
        self.kill_grace = kill_grace
        self.hard_stop = hard_stop
        self._guard: _Guard | None = None
        self._drain_at: float | None = None
        self.ends: PendingEnds | None = None
        """Ended units the worker keeps to write together: written here once kept too long."""
        self.long_unit: Callable[[], None] | None = None
        """Called (in this thread) once a unit has run :data:`LONG_UNIT` seconds."""
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="gristmill-watchdog", daemon=True)
        self._thread.start()

    def watch(self, claim: Claim, reporter: UnitReporter) -> None:
        """Guard ``claim`` from now on."""
        now = time.monotonic()
        self._guard = _Guard(
            claim,
            reporter,
            last_write=now,
            next_cancel_look=now + CANCEL_POLL,
            long_at=now + LONG_UNIT,
        )

    def step_started(self, timeout: float | None) -> None:
        """A step started with this time limit (``None``: a step ended)."""
        guard = self._guard
        if guard is not None:
            guard.hard_deadline = None
            guard.timeout = timeout
            guard.deadline = time.monotonic() + timeout if timeout else None

    def drain(self, seconds: float) -> None:
        """The worker is stopping: ask the running step to stop if it is still running in
        ``seconds`` (it is then released for another worker).

        Safe to call from a signal handler: it only sets an attribute."""
        self._drain_at = time.monotonic() + seconds

    def unwatch(self) -> None:
        """Stop guarding the current unit."""
        self._guard = None

    def stop(self) -> None:
        """End the watchdog thread."""
        self._stop.set()
        self._thread.join(timeout=5)

    def _loop(self) -> None:
        try:
            self._guard_units()
        finally:
            self.store.end_thread()

    def _guard_units(self) -> None:
        heartbeat = self.lease / 3
        while not self._stop.is_set():
            rang = self._wait(TICK if self._guard is not None else IDLE_TICK)
            self._write_kept_ends()
            guard = self._guard
            if guard is None:
                continue
            now = time.monotonic()
            if guard.long_at is not None and now >= guard.long_at:
                guard.long_at = None
                if self.long_unit is not None:
                    self.long_unit()
            if (rang or now >= guard.next_cancel_look) and not guard.reporter.is_cancelled():
                guard.next_cancel_look = now + CANCEL_POLL
                self._look_for_cancel(guard)
            self._enforce(guard, now)
            since = now - guard.last_write
            if since >= heartbeat or (guard.reporter.dirty and since >= FLUSH_INTERVAL):
                guard.last_write = now
                self._flush(guard)

    def _write_kept_ends(self) -> None:
        ends = self.ends
        if ends is not None and ends.due():
            try:
                ends.write()
            except Exception:  # the database is away: they are written again later
                return

    def _wait(self, timeout: float) -> bool:
        try:
            return self.store.wait_for_cancel(timeout)
        except Exception:  # the database is away: look again after a tick, polling meanwhile
            self._stop.wait(timeout)
            return False

    def _look_for_cancel(self, guard: _Guard) -> None:
        try:
            requested = self.store.cancel_requested(guard.claim)
        except Exception:  # a database hiccup: the next look, or the next flush, tells
            return
        if requested and guard is self._guard:
            guard.reporter.cancel(StopReason.CANCELLED)

    def _enforce(self, guard: _Guard, now: float) -> None:
        if self._drain_at is not None and now >= self._drain_at:
            guard.reporter.cancel(StopReason.DRAIN)
        if guard.deadline is not None and now >= guard.deadline and guard.hard_deadline is None:
            guard.reporter.cancel(StopReason.TIMEOUT)
            guard.hard_deadline = now + self.kill_grace
        if guard.reporter.is_cancelled() and guard.hard_deadline is None:
            guard.hard_deadline = now + self.kill_grace
        if guard.hard_deadline is not None and now >= guard.hard_deadline:
            self.hard_stop(guard.claim, guard.reporter)

    def _flush(self, guard: _Guard) -> None:
        with guard.reporter.write_lock:
            if guard is not self._guard:
                return
            report = guard.reporter.take()
            try:
                # The store consumes the lines it is given: keep ours in case it fails.
                sent = replace(report, logs=list(report.logs))
                renewal = self.store.flush(guard.claim, sent, lease=self.lease)
            except Exception:  # a database hiccup: the lines go out with the next write
                guard.reporter.restore(report)
                return
        if not renewal.owned:
            guard.reporter.cancel(StopReason.LOST)
        elif renewal.cancel_requested:
            guard.reporter.cancel(StopReason.CANCELLED)
