"""The runner on the memory store: steps persisted in order, current results reused, errors
told apart, cancellation, and an attempt that lost its claim publishing nothing."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from gristmill import CancelledError, Inputs, Pipeline, RunContext, TaskError, task
from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run, submit
from gristmill.executors.inline import InlineExecutor, run_inline
from gristmill.states import RunState, StepState
from tests.integration.conftest import wait_until
from tests.unit.engine.conftest import MakeService

NONE = Inputs(min_count=0)


def run_now(service: Service, pipeline: str) -> RunStatus:
    run_id = submit(pipeline, service=service)
    run_inline(service, run_id)
    return get_run(run_id, service=service)


def counting_chain(calls: list[str], version: str = "1") -> Pipeline:
    @task
    def first(run: RunContext) -> int:
        calls.append("first")
        return 1

    @task(version=version)
    def second(run: RunContext, upstream: Mapping[str, Any]) -> int:
        calls.append("second")
        return upstream["first"] + 1

    @task(needs=["second"])
    def third(run: RunContext, upstream: Mapping[str, Any]) -> int:
        calls.append("third")
        return upstream["second"] * 10

    return Pipeline("chain", [first, second, third], inputs=NONE)


def test_each_step_is_persisted_before_the_next_starts(make_service: MakeService) -> None:
    seen: dict[str, list[str]] = {}
    services: list[Service] = []

    def stored_so_far(run: RunContext) -> list[str]:
        return list(services[0].store.get_steps(run.run_id))

    @task
    def a(run: RunContext) -> str:
        seen["a"] = stored_so_far(run)
        return "a"

    @task
    def b(run: RunContext) -> str:
        seen["b"] = stored_so_far(run)
        return "b"

    @task
    def c(run: RunContext) -> str:
        seen["c"] = stored_so_far(run)
        return "c"

    services.append(make_service(Pipeline("abc", [a, b, c], inputs=NONE)))
    status = run_now(services[0], "abc")
    assert seen == {"a": [], "b": ["a"], "c": ["a", "b"]}
    assert status.state == RunState.SUCCEEDED
    assert [(s.name, s.state, s.result, s.attempt) for s in status.steps] == [
        ("a", StepState.SUCCEEDED, "a", 1),
        ("b", StepState.SUCCEEDED, "b", 1),
        ("c", StepState.SUCCEEDED, "c", 1),
    ]


def test_a_rerun_reuses_current_results_and_recomputes_stale_ones(
    make_service: MakeService,
) -> None:
    calls: list[str] = []
    v1 = make_service(counting_chain(calls, "1"))
    run_id = submit("chain", service=v1)
    run_inline(v1, run_id)
    first = v1.store.get_steps(run_id)
    v2 = Service(
        v1.settings, v1.store, make_service(counting_chain(calls, "2")).registry, v1.storage
    )
    assert v1.store.requeue(run_id, reason="stale results")
    calls.clear()
    assert run_inline(v2, run_id) == RunState.SUCCEEDED
    assert calls == ["second", "third"]
    second = v2.store.get_steps(run_id)
    assert {name: step.attempt for name, step in second.items()} == {
        "first": 1,
        "second": 2,
        "third": 2,
    }
    assert second["first"].started_at == first["first"].started_at
    log = [line.text for line in v2.store.read_log(run_id)]
    assert "recomputing: version of `second` 1 → 2" in log


def test_a_task_error_fails_the_run_with_its_message(make_service: MakeService) -> None:
    @task
    def ok(run: RunContext) -> int:
        return 1

    @task
    def bad(run: RunContext) -> None:
        raise TaskError("row 3 has no 'id' field")

    @task
    def never(run: RunContext) -> None:
        raise AssertionError("a step after a failure ran")

    status = run_now(make_service(Pipeline("bad", [ok, bad, never], inputs=NONE)), "bad")
    assert (status.state, status.error, status.run.error_ref) == (
        RunState.FAILED,
        "row 3 has no 'id' field",
        None,
    )
    assert [s.state for s in status.steps] == [
        StepState.SUCCEEDED,
        StepState.FAILED,
        StepState.PENDING,
    ]
    assert status.steps[1].error == "row 3 has no 'id' field"


def test_any_other_exception_is_an_internal_error_with_a_reference(
    make_service: MakeService,
) -> None:
    @task
    def broken(run: RunContext) -> float:
        return 1 / 0

    status = run_now(make_service(Pipeline("broken", [broken], inputs=NONE)), "broken")
    ref = status.run.error_ref
    assert ref and status.error == f"internal error, reference {ref}"
    assert status.run.error_traceback is not None
    assert "ZeroDivisionError: division by zero" in status.run.error_traceback


def test_a_result_that_is_not_json_fails_naming_the_step_and_type(
    make_service: MakeService,
) -> None:
    @task
    def returns_a_set(run: RunContext) -> Any:
        return {"values": {1, 2}}

    status = run_now(make_service(Pipeline("set", [returns_a_set], inputs=NONE)), "set")
    assert status.error == (
        "step `returns_a_set` returned a value of type set, which cannot be stored as JSON; "
        "return dicts, lists, strings, numbers, booleans or None"
    )


def test_a_run_cancelled_before_its_unit_starts_runs_no_step(make_service: MakeService) -> None:
    calls: list[str] = []
    service = make_service(counting_chain(calls))
    executor = InlineExecutor(service)
    try:
        run_id, claim = executor.submit("chain")
        assert service.store.request_cancel(run_id)
        assert executor.run(claim) == RunState.CANCELLED
    finally:
        executor.close()
    assert calls == []
    assert get_run(run_id, service=service).error == "the run was cancelled"


def test_a_step_that_checks_for_cancellation_stops_the_run(make_service: MakeService) -> None:
    services: list[Service] = []

    @task
    def waits_for_cancel(run: RunContext) -> None:
        services[0].store.request_cancel(run.run_id)
        wait_until(lambda: run.cancelled, message="the watchdog to pass the cancel on")
        run.check_cancelled()

    # The heartbeat (every third of the lease) brings the cancel to the watchdog.
    services.append(
        make_service(Pipeline("cancel", [waits_for_cancel], inputs=NONE), lease_seconds=0.6)
    )
    status = run_now(services[0], "cancel")
    assert (status.state, status.error) == (RunState.CANCELLED, "the run was cancelled")
    assert status.steps[0].state == StepState.CANCELLED
    assert status.steps[0].error == CancelledError().message


def test_a_cancel_requested_during_the_last_step_wins_over_its_success(
    make_service: MakeService,
) -> None:
    services: list[Service] = []

    @task
    def first(run: RunContext) -> int:
        return 1

    @task
    def cancelled_meanwhile(run: RunContext) -> int:
        services[0].store.request_cancel(run.run_id)
        return 2

    services.append(make_service(Pipeline("late", [first, cancelled_meanwhile], inputs=NONE)))
    status = run_now(services[0], "late")
    assert (status.state, status.error) == (RunState.CANCELLED, "the run was cancelled")
    assert [s.state for s in status.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]


def test_an_attempt_that_lost_its_claim_publishes_nothing(make_service: MakeService) -> None:
    holder: list[InlineExecutor] = []

    @task
    def outlived_its_lease(run: RunContext) -> str:
        store = holder[0].service.store
        # Another worker takes the unit over while this step runs.
        assert store.release_worker(holder[0].worker.name, "its lease expired") == 1
        assert store.claim("other", queues=None, lease=30, run_id=run.run_id)
        path = run.workdir / "out.txt"
        path.write_text("late")
        run.output(path)
        run.log("late line")
        return "late"

    service = make_service(Pipeline("late", [outlived_its_lease], inputs=NONE))
    executor = InlineExecutor(service)
    holder.append(executor)
    try:
        run_id, claim = executor.submit("late")
        assert executor.run(claim) is None
    finally:
        executor.close()
    status = get_run(run_id, service=service)
    assert (status.state, status.run.attempt) == (RunState.RUNNING, 2)
    assert service.store.get_steps(run_id) == {}
    assert "late line" not in [line.text for line in service.store.read_log(run_id)]


def test_a_cancel_requested_during_a_step_stops_the_run_before_the_next_step(
    make_service: MakeService,
) -> None:
    services: list[Service] = []
    calls: list[str] = []

    @task
    def first(run: RunContext) -> int:
        services[0].store.request_cancel(run.run_id)
        # The step hears of it (through the cancel doorbell) but ends normally all the same.
        deadline = time.monotonic() + 10
        while not run.cancelled and time.monotonic() < deadline:
            time.sleep(0.001)
        return 1

    @task
    def second(run: RunContext) -> int:
        calls.append("second")
        return 2

    @task
    def third(run: RunContext) -> int:
        calls.append("third")
        return 3

    services.append(make_service(Pipeline("between", [first, second, third], inputs=NONE)))
    status = run_now(services[0], "between")
    assert (status.state, status.error) == (RunState.CANCELLED, "the run was cancelled")
    assert calls == []
