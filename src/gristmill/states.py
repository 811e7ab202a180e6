"""Every state in gristmill, and the moves allowed between them: runs, steps, work units, and
why a running step was asked to stop.

One enum each, used alike by the database, the engine, the API, the pages and the CLI. The
transition tables are the rules: the stores build their ``WHERE state IN (...)`` conditions from
them and refuse a move they do not allow with :class:`TransitionError`. A new state is added
here, with its transitions, and nowhere else decides what it may follow.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from gristmill.errors import TransitionError


class RunState(StrEnum):
    """Where a run is in its life."""

    QUEUED = "queued"
    """Accepted and waiting for a worker (also while stale steps wait to be recomputed)."""
    RUNNING = "running"
    """A worker is executing its steps."""
    SUCCEEDED = "succeeded"
    """Every step succeeded or was skipped; results can be shown."""
    FAILED = "failed"
    """A step failed (``TaskError`` message, internal error reference, or a lost worker)."""
    CANCELLED = "cancelled"
    """Cancelled by its owner or staff before it finished."""
    EXPIRED = "expired"
    """Past its retention: files and heavy rows are gone, a small record remains."""

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_RUN_STATES


class StepState(StrEnum):
    """Where one step of a run is."""

    PENDING = "pending"
    """Not started yet in the current attempt."""
    RUNNING = "running"
    """Being processed now."""
    SUCCEEDED = "succeeded"
    """Processed (or reused from a previous, still current result)."""
    SKIPPED = "skipped"
    """Not applicable to this run."""
    FAILED = "failed"
    """Raised an error; the run failed with it."""
    CANCELLED = "cancelled"
    """The run was cancelled before or while the step ran."""

    @property
    def is_terminal(self) -> bool:
        return self not in (StepState.PENDING, StepState.RUNNING)


_TERMINAL_RUN_STATES = frozenset(
    {RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED, RunState.EXPIRED}
)

FINAL_RUN_STATES = frozenset({RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED})
"""How a run's work can end (terminal, but not yet expired: it may be rerun or expire)."""

RUN_TRANSITIONS: dict[RunState, frozenset[RunState]] = {
    RunState.QUEUED: frozenset({RunState.RUNNING, RunState.FAILED, RunState.CANCELLED}),
    RunState.RUNNING: frozenset(
        {RunState.QUEUED, RunState.SUCCEEDED, RunState.FAILED, RunState.CANCELLED}
    ),
    # A succeeded run goes back to the queue when a stale step must be recomputed.
    RunState.SUCCEEDED: frozenset({RunState.QUEUED, RunState.EXPIRED}),
    RunState.FAILED: frozenset({RunState.QUEUED, RunState.EXPIRED}),
    RunState.CANCELLED: frozenset({RunState.QUEUED, RunState.EXPIRED}),
    RunState.EXPIRED: frozenset(),
}
"""Which states a run may move to from each state (a rerun re-queues a finished run)."""


def can_transition(current: RunState, new: RunState) -> bool:
    """Return whether a run in ``current`` may move to ``new``."""
    return new in RUN_TRANSITIONS[current]


def run_states_before(new: RunState, *, among: Iterable[RunState] = RunState) -> list[RunState]:
    """The states (of ``among``, in declaration order) from which a run may move to ``new``:
    what a store's ``WHERE state IN (...)`` for that move lists."""
    allowed = set(among)
    return [state for state in RunState if state in allowed and can_transition(state, new)]


RERUNNABLE_RUN_STATES = run_states_before(RunState.QUEUED, among=FINAL_RUN_STATES)
"""The states a rerun may move a run out of (back to ``queued``)."""
EXPIRABLE_RUN_STATES = run_states_before(RunState.EXPIRED)
"""The states expiry may move a run out of."""


class UnitState(StrEnum):
    """Where a work unit (what a worker claims) is. A run has one unit per attempt series; the
    unit, not the run, carries the lease and the attempt number that fences a worker's writes."""

    QUEUED = "queued"
    """Waiting for a worker to claim it."""
    CLAIMED = "claimed"
    """Held by a worker until its lease ends; only writes fenced by its attempt are taken."""
    DONE = "done"
    """Finished: its run ended (or was cancelled before it was claimed, or gave up)."""


UNIT_TRANSITIONS: dict[UnitState, frozenset[UnitState]] = {
    UnitState.QUEUED: frozenset({UnitState.CLAIMED, UnitState.DONE}),
    # Back to the queue when its worker stops or is lost and attempts remain.
    UnitState.CLAIMED: frozenset({UnitState.CLAIMED, UnitState.QUEUED, UnitState.DONE}),
    UnitState.DONE: frozenset(),
}
"""Which states a unit may move to from each state (``claimed`` to ``claimed`` renews a lease).
A rerun adds a new unit rather than reviving a done one."""


class UnitKind(StrEnum):
    """What a work unit asks a worker to do."""

    RUN = "run"
    """Run a whole pipeline run's steps in order."""
    BATCH = "batch"
    """Run a map step's item function over one batch of its items (see :class:`BatchState`).
    Its run stays ``running`` while it waits; ending a batch never ends the run by itself."""


class BatchState(StrEnum):
    """Where one batch of a map step is."""

    PENDING = "pending"
    """Queued or being processed (its unit says which)."""
    DONE = "done"
    """Every item was processed (items that raised under ``on_failure="continue"`` are listed
    as failed items; the batch is still done)."""
    FAILED = "failed"
    """The batch could not be completed: an item raised under ``on_failure="fail"``, the items
    could not be read, or its workers were lost past the attempt limit."""
    SKIPPED = "skipped"
    """Not run: another batch of the map had failed under ``on_failure="fail"``, which fails
    the run anyway (retrying failed batches runs it)."""

    @property
    def is_terminal(self) -> bool:
        return self != BatchState.PENDING


class StopReason(StrEnum):
    """Why a running step was asked to stop (set by the watchdog, read by the runner)."""

    CANCELLED = "cancelled"
    """Its owner or staff cancelled the run: it ends ``cancelled``."""
    TIMEOUT = "timeout"
    """The step ran past its time limit: it fails with a timeout."""
    LOST = "lost"
    """The worker no longer holds the claim (its lease was taken over): it writes nothing more."""
    DRAIN = "drain"
    """The worker is stopping: the run is handed back to the queue for another worker."""


def check_run_end(state: RunState) -> None:
    """Raise :class:`TransitionError` unless a running run may end in ``state`` (the states a
    worker's ``finish`` may write: a final state reachable from ``running``)."""
    if not (state.is_terminal and can_transition(RunState.RUNNING, state)):
        raise TransitionError(RunState.RUNNING, state)
