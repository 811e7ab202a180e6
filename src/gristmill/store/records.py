"""The records the store hands to and takes from the engine: runs, steps, units and their
claims, inputs and outputs, reports, maps and their batches and findings, with the messages and
limits they carry. Plain data; :mod:`gristmill.store.base` is the interface that moves them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

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
