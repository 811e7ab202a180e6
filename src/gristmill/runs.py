"""The states of runs and steps, and the transitions between them.

One enum each, used alike by the database, the engine, the API, the pages and the CLI.
"""

from __future__ import annotations

from enum import StrEnum


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
