"""The inline executor and the worker loop on the memory store."""

from __future__ import annotations

from pydantic import BaseModel

from gristmill import Inputs, Pipeline, RunContext, task
from gristmill.app.submission import get_run, submit
from gristmill.executors.inline import InlineExecutor, run_inline
from gristmill.executors.worker import Worker
from gristmill.states import RunState
from tests.unit.engine.conftest import MakeService


class Value(BaseModel):
    value: int = 1


@task
def double(run: RunContext) -> int:
    return int(run.params.value) * 2


DOUBLING = Pipeline("doubling", [double], params=Value, inputs=Inputs(min_count=0))


def test_an_inline_run_is_held_by_this_process_from_the_start(make_service: MakeService) -> None:
    service = make_service(DOUBLING)
    executor = InlineExecutor(service)
    try:
        run_id, claim = executor.submit("doubling", params={"value": 21})
        assert get_run(run_id, service=service).state == RunState.RUNNING
        assert service.store.claim("a-worker", queues=None, lease=30) == []
        assert executor.run(claim) == RunState.SUCCEEDED
    finally:
        executor.close()
    assert get_run(run_id, service=service).result("double") == 42


def test_an_abandoned_inline_run_ends_cancelled_with_the_reason(
    make_service: MakeService,
) -> None:
    service = make_service(DOUBLING)
    executor = InlineExecutor(service)
    try:
        run_id, claim = executor.submit("doubling")
        executor.abandon(claim, "interrupted (Ctrl-C)")
    finally:
        executor.close()
    status = get_run(run_id, service=service)
    assert (status.state, status.error) == (RunState.CANCELLED, "interrupted (Ctrl-C)")


def test_running_a_run_with_nothing_queued_does_nothing(make_service: MakeService) -> None:
    service = make_service(DOUBLING)
    run_id = submit("doubling", service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    assert run_inline(service, run_id) is None


def test_a_worker_runs_queued_runs_in_order_until_none_is_left(
    make_service: MakeService,
) -> None:
    service = make_service(DOUBLING)
    run_ids = [submit("doubling", params={"value": v}, service=service) for v in (1, 2, 3)]
    worker = Worker(service, name="test-worker")
    try:
        ran = 0
        while worker.run_once():
            ran += 1
    finally:
        worker.watchdog.stop()
    assert ran == 3
    statuses = [get_run(run_id, service=service) for run_id in run_ids]
    assert [(s.state, s.result("double")) for s in statuses] == [
        (RunState.SUCCEEDED, 2),
        (RunState.SUCCEEDED, 4),
        (RunState.SUCCEEDED, 6),
    ]
