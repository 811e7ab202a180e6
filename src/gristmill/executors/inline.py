"""The inline executor: run a run in this process (``gristmill run``, tests).

A run made for inline execution is created with its unit already claimed by this process, in
the same transaction, so a worker sharing the database can never take it. A step that will not
stop after its time limit and grace period ends this process, since a Python call cannot be
interrupted from outside; the run is failed with the reason first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gristmill.app.service import Service
from gristmill.app.submission import create
from gristmill.authoring.inputs import InputSource
from gristmill.authoring.pipelines import Pipeline
from gristmill.executors.worker import Worker, worker_name
from gristmill.states import RunState
from gristmill.store.records import Claim, Failure, Report


class InlineExecutor:
    """Creates runs held by this process and runs them here."""

    def __init__(self, service: Service):
        self.service = service
        self.worker = Worker(service, name=f"{worker_name()}/inline", exit_on_hard_stop=False)

    def submit(
        self,
        pipeline: str | Pipeline,
        inputs: Sequence[InputSource] = (),
        params: Mapping[str, Any] | None = None,
    ) -> tuple[str, Claim]:
        """Check and store a run exactly as :func:`~gristmill.app.submission.submit` does, claimed
        by this process; return its id and the claim to :meth:`run`."""
        run_id, claim = create(
            pipeline,
            inputs,
            params,
            service=self.service,
            claimed_by=self.worker.name,
            lease=self.worker.lease,
        )
        assert claim is not None
        return run_id, claim

    def run(self, claim: Claim) -> RunState | None:
        """Run the claimed unit here, and the units it leads to (a map step's batches, then
        the walk that finishes the run), until the run ends; return the state it was ended
        with (``None`` if fenced out), as :meth:`UnitRunner.run
        <gristmill.engine.runner.UnitRunner.run>` does."""
        store, worker = self.service.store, self.worker
        state = worker.runner.run(claim)
        while state == RunState.RUNNING:
            claims = store.claim(worker.name, queues=None, lease=worker.lease, run_id=claim.run_id)
            if claims:
                state = worker.runner.run(claims[0])
                continue
            # Some of its batches are with workers sharing the database: wait for the run.
            record = store.get_run(claim.run_id)
            if record.state.is_terminal:
                return record.state
            store.wait_for_done(1.0)
        return state

    def abandon(self, claim: Claim, reason: str) -> None:
        """End a claimed run as cancelled (e.g. on Ctrl-C), so nobody runs it later."""
        self.service.store.finish(claim, RunState.CANCELLED, Report(), Failure(reason))

    def close(self) -> None:
        """Stop the watchdog thread."""
        self.worker.watchdog.stop()


def run_inline(service: Service, run_id: str) -> RunState | None:
    """Claim the queued unit of an existing run and run it here; return its final state.

    Returns ``None`` if the run had no queued unit (another worker took it, or it ended).
    """
    executor = InlineExecutor(service)
    try:
        claims = service.store.claim(
            executor.worker.name, queues=None, lease=executor.worker.lease, run_id=run_id
        )
        for claim in claims:
            return executor.run(claim)
        return None
    finally:
        executor.close()
