"""A write cut off by a lost connection is retried, never the run's fault: on each database,
whether the write was lost before it reached the database or only its answer was lost."""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest

from gristmill import Inputs, Pipeline, RunContext, RunState, task
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.registry import Registry
from gristmill.errors import StoreUnavailableError
from gristmill.executors.inline import run_inline
from gristmill.executors.worker import Worker
from gristmill.server.store import DjangoStore
from gristmill.store.records import NextClaim, Report

LOST = StoreUnavailableError("the database is unavailable: the connection is lost")


class LosingStore(DjangoStore):
    """The real store, except that the first ``count`` calls of ``operation`` meet a lost
    connection: ``before`` the database saw them, or ``after`` they committed (the answer is
    lost)."""

    def __init__(self, alias: str, operation: str, when: str, count: int = 1):
        super().__init__(alias)
        self.operation, self.when, self.left = operation, when, count

    def _cut(self, name: str, write: Any, then_claim: NextClaim | None = None) -> Any:
        if name != self.operation or self.left == 0:
            return write()
        self.left -= 1
        if self.when == "after":
            write()
            if then_claim is not None:
                then_claim.claims.clear()  # what it claimed came back with the lost answer
        raise LOST

    def save_step(self, *args: Any, **kwargs: Any) -> bool:
        save = super().save_step
        return self._cut("save_step", lambda: save(*args, **kwargs), kwargs.get("then_claim"))

    def finish(self, *args: Any, **kwargs: Any) -> bool:
        finish = super().finish
        return self._cut("finish", lambda: finish(*args, **kwargs), kwargs.get("then_claim"))

    def load(self, *args: Any, **kwargs: Any) -> Any:
        load = super().load
        return self._cut("load", lambda: load(*args, **kwargs))


def _losing(service: Service, operation: str, when: str, count: int = 1) -> Service:
    store = LosingStore(service.store.alias, operation, when, count)  # type: ignore[attr-defined]
    return Service(service.settings, store, service.registry, service.storage)


def _log(service: Service, run_id: str) -> list[str]:
    return [line.text for line in service.store.read_log(run_id)]


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_step_result_whose_save_met_a_lost_connection_is_saved_once(
    service: Service, when: str, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = submit("reporting", service=service)
    flaky = _losing(service, "save_step", when, count=3)
    with caplog.at_level(logging.WARNING):
        assert run_inline(flaky, run_id) == RunState.SUCCEEDED
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("report_progress") == "done"
    assert [step.attempt for step in status.steps] == [1]
    assert _log(service, run_id) == ["first line", "second line"]
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        "database unavailable: the database is unavailable: the connection is lost; retrying"
    )
    assert messages[1].startswith("database back after ")
    assert len(messages) == 2


@pytest.mark.parametrize("when", ["before", "after"])
def test_a_run_end_that_met_a_lost_connection_is_written_once(service: Service, when: str) -> None:
    run_id = submit("failing", params={"value": 3}, service=service)
    assert run_inline(_losing(service, "finish", when), run_id) == RunState.FAILED
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    assert status.error == "row 3 has no 'id' field"
    assert _log(service, run_id) == ["step `bad_data` failed: row 3 has no 'id' field"]


def test_a_run_whose_load_met_a_lost_connection_still_runs(service: Service) -> None:
    run_id = submit("trivial", params={"value": 4}, service=service)
    assert run_inline(_losing(service, "load", "before", count=2), run_id) == RunState.SUCCEEDED
    assert get_run(run_id, service=service).result("one") == {"ok": True, "value": 4}


@pytest.mark.parametrize("outage", [True, False])
def test_leases_that_ran_out_during_an_outage_get_a_lease_before_they_are_reaped(
    service: Service, outage: bool
) -> None:
    run_id = submit("trivial", service=service)
    # Held by a worker elsewhere whose lease ran out while nobody could renew it.
    (held,) = service.store.claim("elsewhere/1", queues=None, lease=-1, run_id=run_id)
    worker = Worker(service, name="here/1")
    try:
        if outage:
            worker.outage.failed(LOST)
            worker.outage.recovered()
        worker.draining = True  # look once, do not wait for the doorbell
        worker._idle()
    finally:
        worker.watchdog.stop()
    state = get_run(run_id, service=service).state
    assert state == (RunState.RUNNING if outage else RunState.QUEUED)
    if outage:  # the holder, back in touch, still owns it
        assert service.store.finish(held, RunState.SUCCEEDED, Report())


@task
def alone(run: RunContext) -> int:
    return run.attempt


def test_the_next_unit_claimed_by_a_write_whose_answer_was_lost_is_taken_up(
    service: Service,
) -> None:
    # A queue of its own: the worker takes these two runs and nothing left by other tests.
    queue = f"q{uuid.uuid4().hex[:8]}"
    pipeline = Pipeline("alone", [alone], queue=queue, inputs=Inputs(min_count=0))
    own = Service(service.settings, service.store, Registry([pipeline]), service.storage)
    first, second = (submit("alone", service=own) for _ in range(2))
    worker = Worker(_losing(own, "save_step", "after"), queues=[queue], name="here/2")
    try:
        worker._woken = False  # busy: the end of a unit claims the next one with it
        assert worker.run_once()
        assert [claim.run_id for claim in worker._pending] == [second]
        assert worker.run_once()
    finally:
        worker.watchdog.stop()
    for run_id in (first, second):
        status = get_run(run_id, service=own)
        assert (status.state, status.result("alone")) == (RunState.SUCCEEDED, 1)
    assert service.store.held_by("here/2") == []
