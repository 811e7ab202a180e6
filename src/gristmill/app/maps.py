"""Use cases of map steps: retry a run's failed batches, read a run's map status and findings.

The surfaces (API, pages, CLI) call these; they check the run's state and answer in the
error tree (:class:`~gristmill.errors.ConflictError` when the run is not in a state to act on).
"""

from __future__ import annotations

from gristmill.app.service import Service, default_service
from gristmill.errors import ConflictError
from gristmill.store.records import FindingRecord, MapStatus


def retry_failed_batches(run_id: str, *, service: Service | None = None) -> int:
    """Queue again the batches of an ended run that did not finish (failed, or never ran
    because the run was cancelled); the steps after its map steps are recomputed when they
    end. Returns how many batches were queued.

    Raises :class:`~gristmill.errors.NotFoundError` for an unknown run and
    :class:`~gristmill.errors.ConflictError` if the run is still queued or running, or has no
    failed batches.
    """
    service = service or default_service()
    retried = service.store.retry_failed_batches(run_id)
    if retried:
        return retried
    run = service.store.get_run(run_id)
    if not run.state.is_terminal:
        raise ConflictError(
            f"the run is {run.state.value}; failed batches can be retried once it has ended",
            state=run.state,
        )
    raise ConflictError("the run has no failed batches to retry", state=run.state)


def map_status(run_id: str, *, service: Service | None = None) -> list[MapStatus]:
    """The run's map steps, in step order, summed over their batches (see
    :meth:`~gristmill.store.base.Store.map_status`)."""
    return (service or default_service()).store.map_status(run_id)


def read_findings(
    run_id: str,
    step: str,
    *,
    after: int = 0,
    limit: int = 1000,
    kind: str | None = None,
    service: Service | None = None,
) -> list[FindingRecord]:
    """A page of a map step's findings (see
    :meth:`~gristmill.store.base.Store.read_findings`)."""
    store = (service or default_service()).store
    return store.read_findings(run_id, step, after=after, limit=limit, kind=kind)
