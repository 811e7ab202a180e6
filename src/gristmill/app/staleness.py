"""Whether a run's stored results are still current, and bringing a succeeded run up to date.

When a succeeded run's page is viewed, :func:`refresh` asks each step whether its stored result
is stale (the planner, :func:`gristmill.engine.planner.plan`, compares fingerprints and calls the
tasks' ``is_applicable`` and ``is_needed``). If one is, the run is queued again, and a worker
recomputes the stale steps and the steps that depend on them; meanwhile the page shows the old
results marked stale, with the reasons. :func:`check` says the same without queuing anything
(the REST API's results).

Only results that exist can be stale: a step of an unfinished or failed run that has not
produced a result yet is not stale, it is pending. A succeeded run's step without a result (a
step added to the pipeline since the run) is stale: "not computed yet".

The tasks' methods are the pipeline author's code: if one raises, the error is logged under a
reference (as the server logs internal errors) and the results are taken as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

from gristmill.app.service import Service
from gristmill.authoring.fingerprints import Fingerprint
from gristmill.engine.planner import StepPlan, plan
from gristmill.errors import InternalErrorRef, NotFoundError
from gristmill.states import RunState, StepState
from gristmill.store.records import RunRecord, StepRecord

logger = logging.getLogger("gristmill.app.staleness")

ASKED_AGAIN_AFTER = timedelta(minutes=1)
"""How long after a run ends :func:`refresh` leaves alone a result that only its task's
``is_needed`` calls stale (its fingerprint is current). Without this pause, a task that always
asks to be run again would be recomputed for ever: the run page reloads itself when a run ends,
and that view would queue the run again."""

_KEPT = frozenset({StepState.SUCCEEDED, StepState.SKIPPED})


@dataclass(frozen=True)
class Staleness:
    """Which stored step results of a run are out of date, and why."""

    state: RunState
    """The state of the run this describes."""
    reasons: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Why each stale step is out of date, by step name in step order; current steps are
    absent. The reasons are the planner's words ("version of `convert` 1 → 2")."""
    stale_results: frozenset[str] = frozenset()
    """The stale steps that have a stored successful result: the old results a page shows,
    marked stale, until they are recomputed."""
    queued: bool = False
    """Whether this check queued the run for recomputation."""
    unchecked: str | None = None
    """Set when the check could not be made (a task's ``is_applicable`` or ``is_needed``
    raised, or the run's parameters no longer fit the pipeline): the reference under which the
    error was logged. Nothing is stale then."""

    repeats: bool = False
    """Set for a failed run whose failure would repeat if it ran again: its step raised
    :class:`~gristmill.errors.TaskError` (not an internal error), and nothing that step reads
    (its code and version, the parameters it uses, its upstream results, the inputs) has
    changed since."""

    @property
    def stale(self) -> bool:
        """Whether any step is stale."""
        return bool(self.reasons)

    @property
    def recomputing(self) -> bool:
        """Whether the run is queued or running to replace stale results it still holds."""
        return not self.state.is_terminal and bool(self.stale_results)


def check(service: Service, run_id: str) -> Staleness:
    """Say which of the run's stored results are stale, and why; change nothing.

    A run whose pipeline this service no longer offers, and an expired run, have nothing
    stale; so has a run whose check failed (see :attr:`Staleness.unchecked`). Raises
    :class:`~gristmill.errors.NotFoundError` for an unknown run, and
    :class:`~gristmill.errors.StoreUnavailableError` if the database cannot be read.
    """
    staleness, _ = _assess(service, *service.store.get_run_and_steps(run_id))
    return staleness


def refresh(service: Service, run_id: str) -> Staleness:
    """:func:`check` the run and, if it has succeeded and something is stale, queue it for
    recomputation; return its staleness as it is afterwards.

    However many callers refresh the same run at once, it is queued once: the store queues
    only a finished run (``queued`` tells whether this call did). A result that only its
    task's ``is_needed`` calls stale is not recomputed within :data:`ASKED_AGAIN_AFTER` of the
    run's end. Raises as :func:`check` does.
    """
    run, steps = service.store.get_run_and_steps(run_id)
    staleness, plans = _assess(service, run, steps)
    if run.state != RunState.SUCCEEDED or not _worth_recomputing(run, plans, staleness):
        return staleness
    names = ", ".join(f"`{name}`" for name in staleness.reasons)
    if service.store.requeue(run_id, reason=f"stale results: {names}"):
        return replace(staleness, state=RunState.QUEUED, queued=True)
    return check(service, run_id)  # queued meanwhile by someone else: describe it as it is now


def accept(service: Service, run_id: str, step: str) -> bool:
    """Take the stale stored result of ``step`` as current (staff, who judged that what changed
    does not matter to it): its fingerprint becomes today's, so it is no longer recomputed.
    Steps that read it keep their own staleness, to be accepted or recomputed in their turn.

    Returns False if the result is not stale (or the run is not a succeeded run whose pipeline
    is offered). Raises :class:`~gristmill.errors.NotFoundError` for an unknown run or step.
    """
    run, steps = service.store.get_run_and_steps(run_id)
    if run.pipeline not in service.registry:
        return False
    pipeline = service.registry.get(run.pipeline)
    if step not in pipeline.step_names:
        raise NotFoundError(f"the pipeline {pipeline.name!r} has no step {step!r}")
    if run.state != RunState.SUCCEEDED or step not in steps:
        return False
    wanted = next(p for p in plan(pipeline, run, steps, service.storage) if p.name == step)
    if not wanted.stale:
        return False
    return service.store.accept_step(run_id, step, wanted.fingerprint.to_dict())


def _assess(
    service: Service, run: RunRecord, steps: Mapping[str, StepRecord]
) -> tuple[Staleness, list[StepPlan]]:
    if run.state == RunState.EXPIRED or run.pipeline not in service.registry:
        return Staleness(run.state), []
    if not steps and run.state != RunState.SUCCEEDED:
        return Staleness(run.state), []  # nothing stored yet: nothing to be stale
    try:
        plans = plan(service.registry.get(run.pipeline), run, steps, service.storage)
    except Exception as error:
        internal = InternalErrorRef.log(error, f"the staleness check of run {run.id}", logger)
        return Staleness(run.state, unchecked=internal.reference), []
    stale = [p for p in plans if p.stale and _has_a_result(p, run)]
    staleness = Staleness(
        run.state,
        repeats=_failure_repeats(run, plans),
        reasons={p.name: tuple(p.reasons) for p in stale},
        stale_results=frozenset(
            p.name for p in stale if p.stored is not None and p.stored.state == StepState.SUCCEEDED
        ),
    )
    return staleness, plans


def _has_a_result(step: StepPlan, run: RunRecord) -> bool:
    if step.stored is None:
        return run.state == RunState.SUCCEEDED  # a step the pipeline gained since the run
    return step.stored.state in _KEPT


def _worth_recomputing(run: RunRecord, plans: list[StepPlan], staleness: Staleness) -> bool:
    if not staleness.stale:
        return False
    ended = run.finished_at
    if ended is None:
        return True
    if datetime.now(UTC) - ended >= ASKED_AGAIN_AFTER:
        return True
    return any(not _fingerprint_current(p) for p in plans if p.name in staleness.reasons)


def _fingerprint_current(step: StepPlan) -> bool:
    stored = step.stored
    if stored is None or stored.fingerprint is None:
        return False
    return Fingerprint.from_dict(stored.fingerprint).digest == step.fingerprint.digest


def _failure_repeats(run: RunRecord, plans: list[StepPlan]) -> bool:
    # An internal error (it has a reference) may be the server's own and pass; a TaskError is
    # the task's verdict on what it read, so the same reading gives the same verdict.
    if run.state != RunState.FAILED or run.error_ref is not None:
        return False
    failed = [p for p in plans if p.stored is not None and p.stored.state == StepState.FAILED]
    return any(_fingerprint_current(p) for p in failed)
