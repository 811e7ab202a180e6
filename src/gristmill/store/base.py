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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from gristmill.errors import NotFoundError
from gristmill.errors import QuotaExceededError as QuotaExceededError  # create_run's refusal
from gristmill.states import BatchState, RunState, UnitKind

CANCELLED_MESSAGE = "the run was cancelled"
"""The message of a run that a cancel stopped, unless its worker had more to say."""

KILLED_MESSAGE = "the run was cancelled; its processes were killed"
"""The message of a cancelled run whose step did not stop when asked."""

NEVER_STARTED_MESSAGE = "cancelled before it started"
"""The message of a run cancelled while it was queued."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A unit of work held by one worker under a lease."""

    unit_id: int
    run_id: str
    attempt: int
    """Fencing token: how many times the unit has been claimed, this claim included."""
    kind: str = UnitKind.RUN
    preload: Any = field(default=None, compare=False, repr=False)
    """``(RunRecord, steps)`` when the store loaded them with the claim (saves a query)."""


class QueuedUnit(NamedTuple):
    """A unit that was just queued, as a :data:`Bell` hears of it."""

    unit_id: int
    queue: str


Bell = Callable[[Sequence[QueuedUnit]], None]
"""Told of units after the transaction that queued them committed (see :attr:`Store.bell`)."""


STOPPING = "a stopping worker"
"""Who released a unit, as the run's log says by default (see :meth:`Store.release`)."""


@dataclass
class NextClaim:
    """A worker's request to claim its next unit in the same transaction that ends its current
    one (saving a round trip per unit). The store adds what it claimed to ``claims``."""

    worker: str
    queues: Sequence[str] | None
    lease: float
    claims: list[Claim] = field(default_factory=list)
    limit: int = 1
    """Up to how many units to claim (a worker running quick units takes several at a time)."""


@dataclass
class StepEnd:
    """A unit's last step, ending its run: what :meth:`Store.save_step` writes with ``final``,
    kept by a worker to be written with others (:meth:`Store.end_steps`)."""

    claim: Claim
    outcome: StepOutcome
    report: Report
    final: RunState


@dataclass(frozen=True, slots=True)
class InputRecord:
    """One stored input of a run."""

    name: str
    path: str
    """Path relative to the storage root; empty for a URL input not fetched yet."""
    size: int
    sha256: str
    media_type: str
    kind: str = "file"
    source: str = ""
    """Where the input came from: for a URL input, the URL (fetched by the run's worker)."""

    @property
    def awaiting_fetch(self) -> bool:
        """A URL input whose bytes are not stored yet: the run's first attempt fetches it."""
        return not self.path


@dataclass(frozen=True, slots=True)
class OutputRecord:
    """One output file of a step."""

    step: str
    name: str
    path: str
    """Path relative to the storage root."""
    size: int
    sha256: str
    media_type: str


SOURCE_KINDS = frozenset({"url", "datafile"})
"""Input kinds whose ``source`` says where they came from; an input of another kind is known by
its name (see :meth:`Store.previous_run`)."""


@dataclass(frozen=True)
class QuotaLimits:
    """A submitter's limits (``None``: no limit). ``runs`` is how many runs the submission
    adds (a bulk submission adds them all at once)."""

    concurrent: int | None = None
    """Runs queued or running at once."""
    per_day: int | None = None
    """Runs created in the last 24 hours."""
    storage_bytes: int | None = None
    """Bytes of inputs and outputs of the submitter's unexpired runs."""
    runs: int = 1
    new_bytes: int = 0
    """The bytes of the inputs the submission adds."""


@dataclass(frozen=True)
class QuotaUsage:
    """What a submitter uses of its quotas now."""

    concurrent: int
    """Runs queued or running."""
    runs_today: int
    """Runs created in the last 24 hours."""
    storage_bytes: int
    """Bytes of inputs and outputs of unexpired runs."""
    oldest_today: datetime | None = None
    """When the oldest of the runs of the last 24 hours was created (a day later, one more run
    may be created)."""
    next_expiry: datetime | None = None
    """When the first of the unexpired runs expires (its files are removed)."""


@dataclass(frozen=True)
class NewRun:
    """Everything needed to create a run; its first unit is queued in the same transaction."""

    id: str
    pipeline: str
    queue: str
    params: dict[str, Any]
    inputs: Sequence[InputRecord]
    expires_at: datetime
    max_attempts: int = 3
    owner_id: int | None = None
    ancestor_id: str | None = None
    claimed_by: str | None = None
    """Create the first unit already claimed by this worker (the inline executor)."""
    lease: float = 30.0
    """The lease of that claim, in seconds."""
    priority: int = 0
    """The pipeline's priority: workers take units of higher priority first."""
    submitter: str | None = None
    """Who submitted it, for fairness and quotas: ``user:<id>``, ``address:<client address>``,
    or ``None`` (a program using the store directly)."""
    quota: QuotaLimits | None = None
    """Refuse to store the run (:class:`QuotaExceededError`) if storing it would take its
    submitter past these limits, checked in the transaction that stores it."""


@dataclass
class RunRecord:
    """A run as stored."""

    id: str
    pipeline: str
    state: RunState
    params: dict[str, Any]
    inputs: list[InputRecord]
    queue: str
    created_at: datetime
    expires_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    current_step: str | None = None
    stage: str | None = None
    progress_done: int | None = None
    progress_total: int | None = None
    error_message: str | None = None
    error_ref: str | None = None
    error_traceback: str | None = None
    cancel_requested: bool = False
    attempt: int = 0
    """The attempt number of the run's latest unit."""
    owner_id: int | None = None
    ancestor_id: str | None = None
    pinned: bool = False
    """Kept past its retention period until unpinned."""
    cancel_requested_at: datetime | None = None
    """When the run was asked to stop (set with ``cancel_requested``, kept once it ended)."""
    cancel_requested_by: str | None = None
    """Who asked: a user name, or ``None`` for a caller without an account."""
    interrupted_step: str | None = None
    """The step that was running when a cancel stopped the run, if one was."""


class DueRun(NamedTuple):
    """An ended run past its expiry, with what the reason for expiring it needs."""

    id: str
    created_at: datetime
    expires_at: datetime


@dataclass
class StepRecord:
    """The stored outcome of one step of a run (the latest attempt's)."""

    name: str
    position: int
    state: str
    attempt: int
    result: Any
    fingerprint: dict[str, Any] | None
    error: str | None = None
    accepted: bool = False
    started_at: float | None = None
    finished_at: float | None = None
    outputs: list[OutputRecord] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class StepOutcome:
    """What the engine persists when a step ends."""

    name: str
    position: int
    state: str
    result_json: str | None
    fingerprint: dict[str, Any] | None
    started_at: float
    finished_at: float
    error: str | None = None
    outputs: Sequence[OutputRecord] = ()
    replaces_outputs: bool = True
    """Whether an earlier attempt may have stored outputs for this step (to be replaced)."""


@dataclass(frozen=True, slots=True)
class LogLine:
    """One line of a run's log. ``id`` increases; read on with ``after=id``."""

    id: int
    at: float
    step: str
    stream: str
    text: str


@dataclass
class Report:
    """Live status a worker flushes: current step, stage, progress and new log lines."""

    current_step: str | None = None
    stage: str | None = None
    progress_done: int | None = None
    progress_total: int | None = None
    logs: list[tuple[float, str, str, str]] = field(default_factory=list)
    """``(at, step, stream, text)`` lines not yet written."""
    status: bool = True
    """Whether the report carries the run's status (current step, stage, progress). A batch
    unit's does not: while a map runs, the run's status is its map's, which each batch's end
    writes."""


@dataclass(frozen=True, slots=True)
class Renewal:
    """The answer to a lease renewal."""

    owned: bool
    """False if the lease was taken over: stop and publish nothing."""
    cancel_requested: bool


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a run failed: a message for the user, and for internal errors a reference."""

    message: str
    ref: str | None = None
    traceback: str | None = None
    step: str | None = None
    """The step that was running when the run ended, if one was (recorded if it ends
    cancelled)."""


# -- map steps ------------------------------------------------------------------------------
#
# A map step's items are cut into batches that every worker shares. The run's unit records the
# map, its batches and one queued unit of kind ``batch`` per batch in one transaction
# (:meth:`Store.start_map`) and ends without ending the run. Each batch unit's worker saves its
# findings and counts in one fenced transaction (:meth:`Store.save_batch`), which also counts
# down the map's remaining batches; the batch that brings the count to zero queues a unit of
# kind ``run`` that walks the run's steps again: the map step is then finalised from its
# batches (:meth:`Store.map_status`) and the steps after it run.

LOCK_LEASE = 300.0
"""How long (seconds) a lock taken with :meth:`Store.try_lock` is held at most by default,
unless given back or renewed first."""

MAX_EXAMPLES = 5
"""How many examples of each kind of finding a batch keeps (and a map status shows)."""

MAX_FAILED_ITEMS = 100
"""How many failed items (number and message) a batch lists; the count covers them all."""


@dataclass(frozen=True, slots=True)
class BatchSpec:
    """Where one batch's items are: items ``first_item`` to ``first_item + items - 1`` (item
    numbers start at 1), read from ``source`` (a path relative to the storage root) between
    byte offsets ``start`` and ``end`` (``end`` ``None``: to the end of the file)."""

    number: int
    """1 for the first batch of the map."""
    first_item: int
    items: int
    source: str
    start: int = 0
    end: int | None = None


@dataclass(frozen=True)
class NewMap:
    """A map step about to be cut into batches (see :meth:`Store.start_map`)."""

    step: str
    position: int
    fingerprint: dict[str, Any]
    """The map step's fingerprint: a later walk finalises the map only under the same one."""
    on_failure: str
    """``"fail"`` or ``"continue"``: what a failed batch or item means for the run."""
    items_total: int
    batches: Sequence[BatchSpec]


@dataclass(frozen=True, slots=True)
class BatchRecord:
    """What a batch unit's worker needs: which map, which batch, where its items are."""

    run_id: str
    step: str
    batches_total: int
    spec: BatchSpec
    map_failed: bool = False
    """Whether a batch of the map failed already under ``on_failure="fail"``: the run fails
    anyway, so this batch is skipped rather than run."""


@dataclass(frozen=True)
class BatchOutcome:
    """What a batch unit's worker saves when the batch ends (see :meth:`Store.save_batch`)."""

    step: str
    number: int
    state: BatchState
    """``done`` or ``failed``."""
    items_done: int
    """Items processed, failed items included (under ``on_failure="continue"``)."""
    findings: Sequence[tuple[int, str, str]] = ()
    """``(item number, kind, finding as JSON)`` of every finding, in item order."""
    counts: Mapping[str, int] = field(default_factory=dict)
    """Findings by kind."""
    examples: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    """At most :data:`MAX_EXAMPLES` findings of each kind."""
    items_failed: int = 0
    failed_items: Sequence[tuple[int, str]] = ()
    """``(item number, message)`` of up to :data:`MAX_FAILED_ITEMS` items that raised."""
    error: str | None = None
    """Why a failed batch failed (the first item's error under ``"fail"``)."""
    batches_total: int = 0
    """How many batches the map has (shown with the number as the run's stage)."""


@dataclass(frozen=True, slots=True)
class FailedBatch:
    """A batch that did not complete, or that listed failed items."""

    number: int
    first_item: int
    items: int
    state: str
    error: str | None
    failed_items: list[tuple[int, str]]


@dataclass
class MapStatus:
    """Where one map step of a run is, summed over its batches (never per item)."""

    step: str
    position: int
    on_failure: str
    fingerprint: dict[str, Any]
    generation: int
    """Starts at 1; :meth:`Store.retry_failed_batches` adds one."""
    batches_total: int
    remaining: int
    """Batches not yet ended (the counter the last batch brings to zero)."""
    batches: dict[str, int]
    """How many batches are in each :class:`~gristmill.states.BatchState`."""
    items_total: int
    items_done: int
    items_failed: int
    counts: dict[str, int]
    """Findings by kind, over the ended batches."""
    examples: dict[str, list[Any]]
    """Up to :data:`MAX_EXAMPLES` findings of each kind, from the ended batches (lowest batch
    first)."""
    failed_batches: list[FailedBatch]
    """Batches that failed, and done batches that listed failed items, by number."""
    settled: bool
    """The map was taken into account by a walk of the run's steps (or the run was queued
    again since): only a complete, unsettled map is finalised by the next walk."""

    @property
    def complete(self) -> bool:
        """Every batch ended (done or failed)."""
        return self.remaining == 0


@dataclass(frozen=True, slots=True)
class FindingRecord:
    """One stored finding of a map step."""

    item: int
    """The item's number (1 for the first item)."""
    batch: int
    kind: str
    finding: Any
    """The finding as the item function returned it (a dict with ``"kind"``)."""


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
