"""The inline executor: run one queued run in this process (``gristmill run``, tests).

A step that will not stop after its time limit and grace period ends this process, since a
Python call cannot be interrupted from outside; the run is failed with the reason first.
"""

from __future__ import annotations

from gristmill.executors.worker import Worker, worker_name
from gristmill.runs import RunState
from gristmill.service import Service


def run_inline(service: Service, run_id: str) -> RunState | None:
    """Claim the queued unit of ``run_id`` and run it here; return the run's final state.

    Returns ``None`` if the run had no queued unit (another worker took it).
    """
    worker = Worker(service, name=f"{worker_name()}/inline", exit_on_hard_stop=False)
    try:
        claims = service.store.claim(worker.name, queues=None, lease=worker.lease, run_id=run_id)
        for claim in claims:
            return worker.runner.run(claim)
        return None
    finally:
        worker.watchdog.stop()
