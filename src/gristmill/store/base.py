"""The store interface: everything the engine needs from a database, and nothing more.

The database is the truth. Every run, step result, work unit, lease and log line lives in the
store; executors only move unit ids around. :class:`gristmill.store.sql.SqlStore` implements
this interface on SQLite and PostgreSQL, and :class:`gristmill.store.memory.MemoryStore` keeps
the same contract in memory for tests; neither, nor the engine, imports Django.

Fencing: each claim of a unit increments its ``attempt``. Every write made on behalf of a claim
(:meth:`Store.save_step`, :meth:`Store.flush`, :meth:`Store.finish`, :meth:`Store.renew`) checks
that the unit is still claimed with that attempt, and does nothing (returning ``False``) if the
lease was taken over. A late worker therefore can never publish results.
"""

from __future__ import annotations

import abc
import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from gristmill.errors import NotFoundError
from gristmill.errors import QuotaExceededError as QuotaExceededError  # create_run's refusal
from gristmill.states import RunState
from gristmill.store.records import (
    LOCK_LEASE,
    STOPPING,
    BatchOutcome,
    BatchRecord,
    Bell,
    Claim,
    DueRun,
    Failure,
    FindingRecord,
    InputRecord,
    LogLine,
    MapStatus,
    NewMap,
    NewRun,
    NextClaim,
    QueuedUnit,
    QuotaUsage,
    Renewal,
    Report,
    RunRecord,
    StepEnd,
    StepOutcome,
    StepRecord,
)


class Store(abc.ABC):
    """What the engine needs from a database. See the module docstring for fencing."""

    supports_skip_locked: bool = False
    """Whether claims use ``SELECT ... FOR UPDATE SKIP LOCKED`` (PostgreSQL)."""

    supports_processes: bool = True
    """Whether several processes can share the store (a worker pool, a web server). A store
    kept in one process's memory cannot: it serves tests and ``gristmill run`` only."""

    bell: Bell | None = None
    """The one hook for "units were queued": ``None`` (the default) rings the store's own work
    doorbell (:meth:`ring_work`, for local workers); otherwise the store calls ``bell`` with the
    ``(unit_id, queue)`` of each unit it queued, after the transaction that queued them
    committed: in :meth:`create_run`, :meth:`requeue`, :meth:`release`, and when
    :meth:`release_worker` or :meth:`reap` queue a unit again. Any other operation that queues
    units must call :meth:`announce` after its commit. The Celery executor sets it to publish one
    message per unit. A bell must not raise: an error (a broker that is down) is logged by it
    and the unit stays queued in the database, where the reconciler finds it."""

    def announce(self, units: Sequence[QueuedUnit]) -> None:
        """Tell :attr:`bell` (or, without one, the work doorbell) that ``units`` were queued;
        never raises, since what was queued is committed already."""
        try:
            if self.bell is None:
                self.ring_work()
            elif units:
                self.bell(units)
        except Exception:
            logging.getLogger("gristmill.store").exception(
                "queued units not announced; the reconciler will"
            )

    # -- submitting and reading ---------------------------------------------------------

    @abc.abstractmethod
    def create_run(self, run: NewRun) -> Claim | None:
        """Create the run, its inputs and its first queued unit in one transaction.

        With ``run.claimed_by`` the unit is created claimed by that worker instead, and the
        claim is returned.

        Raises :class:`~gristmill.errors.StoreUnavailableError` if that cannot be committed;
        nothing is left behind then. With ``run.quota``, raises :class:`QuotaExceededError`
        (nothing stored) if the run would take ``run.submitter`` past it: the check and the
        insert are one transaction, and two submissions of one submitter cannot both pass.
        """

    @abc.abstractmethod
    def create_runs(self, runs: Sequence[NewRun]) -> None:
        """Create many queued runs, their inputs and first units, in one transaction (bulk
        submission): all of them or, on any error, none. Idle workers are woken once.

        The runs must not be claimed at creation (``claimed_by`` unset), else ``ValueError``.
        Raises :class:`~gristmill.errors.StoreUnavailableError` if they cannot be committed.
        The first run's ``quota`` (with ``runs`` and ``new_bytes`` counting them all) is
        checked as in :meth:`create_run`; all runs have the first one's submitter.
        """

    @abc.abstractmethod
    def quota_usage(self, submitter: str) -> QuotaUsage:
        """What ``submitter`` (see :attr:`NewRun.submitter`) uses of its quotas now."""

    @abc.abstractmethod
    def get_run(self, run_id: str) -> RunRecord:
        """Return the run; :class:`~gristmill.errors.NotFoundError` if there is none."""

    @abc.abstractmethod
    def get_steps(self, run_id: str) -> dict[str, StepRecord]:
        """Return the stored step outcomes of the run, by step name, with their outputs."""

    def load(self, claim: Claim) -> tuple[RunRecord, dict[str, StepRecord]]:
        """The claimed run and its stored steps, as the engine needs them."""
        return self.get_run_and_steps(claim.run_id)

    def get_run_and_steps(self, run_id: str) -> tuple[RunRecord, dict[str, StepRecord]]:
        """:meth:`get_run` and :meth:`get_steps` together (a store may do it in one query)."""
        return self.get_run(run_id), self.get_steps(run_id)

    def get_runs_and_steps(
        self, run_ids: Sequence[str]
    ) -> list[tuple[RunRecord, dict[str, StepRecord]]]:
        """:meth:`get_run_and_steps` of each of ``run_ids``, in that order (a store may read
        them together); :class:`~gristmill.errors.NotFoundError` if one is unknown."""
        return [self.get_run_and_steps(run_id) for run_id in run_ids]

    @abc.abstractmethod
    def previous_run(self, pipeline: str, owner_id: int, first_input: InputRecord) -> str | None:
        """The id of ``owner_id``'s most recently created succeeded run of ``pipeline`` from
        the same source as ``first_input``, or None. Same source: the first input has the same
        kind and, for a URL or a data file, the same ``source`` (the URL, the data file), for
        any other kind the same name."""

    def unfinished(self, run_ids: Sequence[str]) -> list[str]:
        """Those of ``run_ids`` whose run is queued or running, in the given order (an
        unknown id is left out). A store may answer in one query; this default asks run by
        run."""
        found = []
        for run_id in run_ids:
            try:
                state = self.get_run(run_id).state
            except NotFoundError:
                continue
            if not state.is_terminal:
                found.append(run_id)
        return found

    @abc.abstractmethod
    def read_log(self, run_id: str, *, after: int = 0, limit: int = 1000) -> list[LogLine]:
        """Return up to ``limit`` log lines with ``id > after``, oldest first."""

    @abc.abstractmethod
    def request_cancel(self, run_id: str, *, by: str | None = None) -> bool:
        """Cancel the run: at once if queued; if running, record the request (``by``: who
        asked, ``None`` for a caller without an account) and ring the cancel doorbell.

        Returns False if the run had already ended. True is a promise: the run ends
        ``cancelled``, because the write that ends a run honours a pending request in its own
        transaction (see :meth:`finish`); the two are atomic against each other, so the store,
        not a caller's stale view, decides between them.
        """

    @abc.abstractmethod
    def requeue(self, run_id: str, *, reason: str) -> bool:
        """Queue a finished run again (rerun, or recompute stale steps). Its maps are
        settled (see :attr:`MapStatus.settled`).

        Returns False if the run is still queued or running (nothing to do).
        """

    @abc.abstractmethod
    def expire(self, run_id: str, *, reason: str) -> bool:
        """Remove an ended run's heavy rows (steps, outputs, log, inputs, units, maps,
        batches, findings) and mark it
        expired with ``reason``, keeping the small record that lets its URL explain itself.
        The caller deletes its files afterwards.

        Returns False if the run is still queued or running (or already expired); raises
        :class:`~gristmill.errors.NotFoundError` for an unknown run.
        """

    @abc.abstractmethod
    def set_pinned(self, run_id: str, pinned: bool) -> bool:
        """Pin a run (kept past its retention period) or unpin it.

        Returns False if the run has expired already; raises
        :class:`~gristmill.errors.NotFoundError` for an unknown run.
        """

    @abc.abstractmethod
    def due_for_expiry(self, now: datetime, *, limit: int) -> list[DueRun]:
        """Up to ``limit`` ended, unpinned runs whose ``expires_at`` is not after ``now``,
        those that expired first first."""

    @abc.abstractmethod
    def unwiped(self, *, limit: int) -> list[str]:
        """Up to ``limit`` expired runs whose files may still be on disk (not yet
        :meth:`mark_wiped`)."""

    @abc.abstractmethod
    def mark_wiped(self, run_id: str) -> None:
        """Record that an expired run's files are gone."""

    @abc.abstractmethod
    def accept_step(self, run_id: str, step: str, fingerprint: dict[str, Any]) -> bool:
        """Mark a stored step result as current under ``fingerprint`` (staff accepting a stale
        result). Returns False if the step has no stored result."""

    # -- working ------------------------------------------------------------------------

    @abc.abstractmethod
    def claim(
        self,
        worker: str,
        *,
        queues: Sequence[str] | None,
        lease: float,
        limit: int = 1,
        unit_id: int | None = None,
        run_id: str | None = None,
    ) -> list[Claim]:
        """Atomically claim up to ``limit`` queued units, or the given unit, or the queued unit
        of the given run.

        Queued units are taken in the fair order ("queue by load"): higher run priority first;
        then by turn, given to each unit when it is queued (or queued again): how many units
        its submitter then had queued or running, plus, for the batch units of a map, the
        batch's position among them; then oldest first. A submitter with 100 queued units
        does not hold back another's first one, and a worker taking one unit at a time
        alternates between submitters. A run without a submitter has turn 0 (plus the batch's
        position).

        Each claim increments the unit's attempt and leases it to ``worker`` for ``lease``
        seconds; its run moves to ``running``.
        """

    @abc.abstractmethod
    def save_step(
        self,
        claim: Claim,
        outcome: StepOutcome,
        report: Report,
        *,
        lease: float,
        final: RunState | None = None,
        then_claim: NextClaim | None = None,
    ) -> bool:
        """Persist a step's outcome (replacing any earlier one for the step) with its outputs
        and the pending report, in one transaction, and renew the lease.

        With ``final``, the same transaction also ends the unit and moves the run to that state
        (saving a round trip after the last step), and with ``then_claim`` it claims the
        worker's next unit too. Returns False, writing nothing, if the claim was fenced out.
        """

    @property
    def groups_ends(self) -> bool:
        """Whether :meth:`end_steps` writes its ends in one transaction (this default writes
        them one by one): a worker running quick units then ends several at a time."""
        return False

    def end_steps(
        self, ends: Sequence[StepEnd], *, then_claim: NextClaim | None = None
    ) -> list[bool]:
        """:meth:`save_step` with ``final`` for each of ``ends``, the last one with
        ``then_claim``; returns for each whether it was written (False: fenced out, nothing
        of it written; the others are written all the same)."""
        written = []
        for number, end in enumerate(ends):
            last = number == len(ends) - 1
            written.append(
                self.save_step(
                    end.claim,
                    end.outcome,
                    end.report,
                    lease=0.0,
                    final=end.final,
                    then_claim=then_claim if last else None,
                )
            )
        return written

    @abc.abstractmethod
    def cancel_requested(self, claim: Claim) -> bool:
        """Whether the claimed run was asked to stop (a read; nothing is written)."""

    @abc.abstractmethod
    def save_inputs(
        self, claim: Claim, inputs: Mapping[int, InputRecord], report: Report, *, lease: float
    ) -> bool:
        """Replace the run's inputs at the given positions (URL inputs once fetched) and write
        the pending report, in one transaction, renewing the lease. False, writing nothing, if
        the claim was fenced out."""

    @abc.abstractmethod
    def flush(self, claim: Claim, report: Report, *, lease: float) -> Renewal:
        """Write live status and new log lines and renew the lease (the heartbeat).

        Says whether the claim is still owned (nothing is written if not) and whether
        cancellation was requested.
        """

    @abc.abstractmethod
    def finish(
        self,
        claim: Claim,
        state: RunState,
        report: Report,
        failure: Failure | None = None,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        """End the unit and move its run to ``state`` (claiming the worker's next unit in the
        same transaction with ``then_claim``). False, writing nothing, if fenced out.

        If a cancel was requested meanwhile (:meth:`request_cancel` returned True), the run
        ends ``cancelled`` whatever ``state`` says, with ``failure.step`` as the interrupted
        step; :meth:`save_step` with ``final`` does the same."""

    @abc.abstractmethod
    def release(self, claim: Claim, report: Report, *, why: str = STOPPING) -> bool:
        """Give a unit back to the queue without counting a failure (a draining worker, or a
        unit claimed ahead and not started); the run's log says ``attempt N released by`` and
        ``why``."""

    @abc.abstractmethod
    def release_worker(self, worker: str, reason: str) -> int:
        """Requeue (or fail, past the attempt limit) every unit held by a dead worker.

        ``reason`` says how it died ("killed by signal SIGKILL"). Returns how many units.
        """

    def held_by(self, worker: str) -> list[Claim]:
        """The units ``worker`` holds (claimed, lease running or not), oldest first.

        Lets a worker adopt what a write claimed for it when the write's answer was lost with
        the connection (see :class:`NextClaim`).
        """
        raise NotImplementedError

    @abc.abstractmethod
    def reap(self) -> int:
        """Requeue (or fail, past the attempt limit) units whose lease expired.

        Returns how many units were requeued or failed.
        """

    def queued_units(self, *, limit: int) -> list[QueuedUnit]:
        """Up to ``limit`` queued units, oldest first (for the reconciler)."""
        raise NotImplementedError

    def try_lock(self, name: str, *, lease: float = LOCK_LEASE) -> bool:
        """Take the lock ``name``, shared by every process (and thread) on the database, if it
        is free; return whether it was taken. Held until :meth:`unlock` or for ``lease``
        seconds, whichever comes first: a holder that freezes (a paused machine, a ``SIGSTOP``)
        cannot keep it forever. Taking it again while holding it renews the lease."""
        raise NotImplementedError

    def unlock(self, name: str) -> None:
        """Give back the lock ``name`` taken by :meth:`try_lock` (nothing if not held)."""
        raise NotImplementedError

    # -- map steps ------------------------------------------------------------------------

    @abc.abstractmethod
    def start_map(
        self,
        claim: Claim,
        new_map: NewMap,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        """Cut a map step into batches, in one fenced transaction: replace any earlier map of
        the step (its batches and findings are deleted), record the map with its remaining
        counter at the number of batches, one batch row and one queued ``batch`` unit per
        batch, write the report, and end the claim's unit *without* ending the run (it stays
        ``running``). Rings the work doorbell. False, writing nothing, if fenced out."""

    @abc.abstractmethod
    def load_batch(self, claim: Claim) -> BatchRecord | None:
        """The batch a claimed ``batch`` unit stands for (``None`` if the map was replaced)."""

    @abc.abstractmethod
    def save_batch(
        self,
        claim: Claim,
        outcome: BatchOutcome,
        report: Report,
        *,
        then_claim: NextClaim | None = None,
    ) -> bool:
        """End a batch, in one fenced transaction: replace the batch's findings (a batch run
        twice never counts twice), record its counts, examples, failed items and state, count
        the map's remaining batches down by one and its items done up, show the items'
        progress on the run, end the unit, and when the counter reaches zero (and the run is
        still running) queue a ``run`` unit that walks the run's steps again. With
        ``then_claim`` the worker's next unit is claimed in the same transaction. False,
        writing nothing, if fenced out."""

    @abc.abstractmethod
    def map_status(self, run_id: str) -> list[MapStatus]:
        """The map steps of the run, in step order, summed over their batches.
        :class:`~gristmill.errors.NotFoundError` for an unknown run."""

    @abc.abstractmethod
    def read_findings(
        self,
        run_id: str,
        step: str,
        *,
        after: int = 0,
        limit: int = 1000,
        kind: str | None = None,
    ) -> list[FindingRecord]:
        """Findings of the map step for items numbered above ``after`` (of ``kind`` only, if
        given), in item order: about ``limit`` of them, a page always ending with an item's
        last finding (read on with ``after`` = the last item of the page). An empty list once
        there are no more. :class:`~gristmill.errors.NotFoundError` for an unknown run."""

    @abc.abstractmethod
    def retry_failed_batches(self, run_id: str) -> int:
        """Queue again the batches of an ended run that did not finish as done (failed, or
        never run because the run ended first) or listed failed items, with fresh attempts:
        their findings and counts are dropped, each map's counter is set to their number and
        its generation goes up by one, and the run moves back to ``running`` (its error and
        cancel request cleared). When they end, the run's steps are walked again from the map
        step on.

        Returns how many batches were queued: 0, writing nothing, if the run is still queued
        or running, or has none to retry. :class:`~gristmill.errors.NotFoundError` for an
        unknown run."""

    # -- doorbells ----------------------------------------------------------------------

    @abc.abstractmethod
    def ring_work(self) -> None:
        """Wake idle workers: there may be work."""

    @abc.abstractmethod
    def wait_for_work(self, timeout: float) -> None:
        """Block until :meth:`ring_work` is called somewhere, or ``timeout`` seconds pass."""

    @abc.abstractmethod
    def wait_for_cancel(self, timeout: float) -> bool:
        """Block until some run is asked to stop (:meth:`request_cancel`), or ``timeout``
        seconds pass. Returns whether it was woken (or may have missed a ring: the first call
        only starts listening and returns True); callers then look at their run with
        :meth:`cancel_requested`."""

    @abc.abstractmethod
    def ring_done(self, run_id: str) -> None:
        """Tell waiters that a run reached a terminal state."""

    @abc.abstractmethod
    def wait_for_done(self, timeout: float) -> None:
        """Block until some run finishes, or ``timeout`` seconds pass. Spurious wake-ups are
        allowed; callers re-check state."""

    supports_heartbeats: bool = False
    """Whether :meth:`beat` records supervisors' heartbeats (for the health check)."""

    def beat(self, name: str, workers: int, started_at: float) -> None:
        """Record that supervisor ``name`` (started at ``started_at``, a Unix time) is alive
        with ``workers`` live worker processes; forget supervisors silent for an hour."""
        raise NotImplementedError

    def sign_off(self, name: str) -> None:
        """Forget supervisor ``name``: it stopped on purpose."""
        raise NotImplementedError

    def ping(self) -> None:  # noqa: B027 - optional hook, an in-process store is always there
        """Check that the database can be reached; raises
        :class:`~gristmill.errors.StoreUnavailableError` if not."""

    def enable_worker_mode(self) -> None:  # noqa: B027 - optional hook
        """Called once by a worker process before it claims anything.

        A store may trade durability of the worker's own writes for speed here, as long as no
        accepted run can be lost: a lost claim or step result only means the work is redone.
        """

    def before_fork(self) -> None:  # noqa: B027 - optional hook, nothing shared by default
        """Called by a process about to fork workers: drop what a child must not share with
        it (database connections and their sockets). The parent reconnects on next use."""

    def end_thread(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release what the calling thread holds (its connection): called by a thread of the
        engine's own, such as the watchdog, before it ends."""

    def close(self) -> None:  # noqa: B027 - optional hook, nothing to release by default
        """Release connections and sockets held by this process."""
