"""The engine on each database, run inline: results, failures, staleness, fencing."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from gristmill import Inputs, Pipeline, RunContext, RunState, StepState, TaskError, task
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import JsonInput, TextInput
from gristmill.authoring.registry import Registry
from gristmill.engine.planner import plan
from gristmill.errors import NotFoundError, SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.store.records import Claim, NextClaim, Report, StepOutcome


def run_now(service: Service, pipeline: str, inputs=(), params=None):
    run_id = submit(pipeline, list(inputs), params, service=service)
    run_inline(service, run_id)
    return get_run(run_id, service=service)


def test_a_run_succeeds_and_keeps_each_step_result(service: Service, control: Path) -> None:
    (control / "release").touch()
    status = run_now(service, "holding", params={"control": str(control), "value": 7})
    assert status.state == RunState.SUCCEEDED
    assert [s.state for s in status.steps] == [StepState.SUCCEEDED] * 3
    assert status.result("one") == {"ok": True, "value": 7}


def test_a_task_error_fails_the_run_with_its_message(service: Service) -> None:
    status = run_now(service, "failing")
    assert status.state == RunState.FAILED
    assert status.error == "row 3 has no 'id' field"
    assert [s.state for s in status.steps] == [
        StepState.SUCCEEDED,
        StepState.FAILED,
        StepState.PENDING,
    ]


def test_an_unexpected_exception_is_an_internal_error_with_a_reference(service: Service) -> None:
    status = run_now(service, "internal")
    ref = status.run.error_ref
    assert ref and status.error == f"internal error, reference {ref}"
    assert "ZeroDivisionError: division by zero" in status.run.error_traceback


def test_a_result_that_is_not_json_fails_naming_the_step_and_type(service: Service) -> None:
    status = run_now(service, "not-json")
    assert status.error == (
        "step `returns_a_set` returned a value of type set, which cannot be stored as JSON; "
        "return dicts, lists, strings, numbers, booleans or None"
    )


def test_a_step_past_its_time_limit_fails_with_the_limit(service: Service) -> None:
    status = run_now(service, "timing-out")
    assert status.state == RunState.FAILED
    assert status.error == "step `cooperative_slowpoke` ran past its time limit of 0.3 s"


def test_a_step_that_does_not_apply_is_skipped(service: Service) -> None:
    status = run_now(service, "skipping", [JsonInput({"a": 1})])
    assert [s.state for s in status.steps] == [StepState.SKIPPED, StepState.SUCCEEDED]
    status = run_now(service, "skipping", [TextInput("hello")])
    assert [s.state for s in status.steps] == [StepState.SUCCEEDED, StepState.SUCCEEDED]


def test_log_stage_and_progress_are_stored(service: Service) -> None:
    status = run_now(service, "reporting")
    lines = service.store.read_log(status.id)
    assert [line.text for line in lines] == ["first line", "second line"]
    assert service.store.read_log(status.id, after=lines[0].id)[0].text == "second line"


def test_outputs_are_registered_with_digests(service: Service, control: Path) -> None:
    (control / "release").touch()
    status = run_now(service, "holding", params={"control": str(control)})
    (output,) = status.outputs
    assert output.name == "out.txt"
    assert service.storage.path(output.path).read_text() == "attempt 1"
    assert output.size == len("attempt 1")


def test_cancelling_a_queued_run_ends_it_at_once(service: Service) -> None:
    run_id = submit("trivial", service=service)
    assert service.store.request_cancel(run_id)
    assert get_run(run_id, service=service).state == RunState.CANCELLED
    assert run_inline(service, run_id) is None  # nothing left to claim


def test_unknown_run_id_is_not_found(service: Service) -> None:
    with pytest.raises(NotFoundError):
        get_run("00000000-0000-4000-8000-000000000000", service=service)
    with pytest.raises(NotFoundError):
        get_run("not-a-uuid", service=service)


def test_a_refused_submission_leaves_nothing_behind(service: Service) -> None:
    before = set((service.storage.root / "runs").glob("*"))
    with pytest.raises(SubmissionError) as caught:
        submit("trivial", params={"valeu": 3}, service=service)
    assert caught.value.errors == {
        "params.valeu": ["unknown parameter 'valeu' (this pipeline takes: control, value)"]
    }
    assert set((service.storage.root / "runs").glob("*")) == before


def test_a_fenced_out_attempt_cannot_publish(service: Service) -> None:
    run_id = submit("trivial", service=service)
    (first,) = service.store.claim("w1", queues=None, lease=30, run_id=run_id)
    # The lease is taken over: requeued by a reaper and claimed again.
    service.store.release(first, Report())
    (second,) = service.store.claim("w2", queues=None, lease=30, run_id=run_id)
    assert second.attempt == first.attempt + 1
    late = StepOutcome("one", 0, StepState.SUCCEEDED, '"late"', {}, 0.0, 0.0)
    assert not service.store.save_step(first, late, Report(), lease=30)
    assert not service.store.finish(first, RunState.FAILED, Report())
    assert service.store.get_steps(run_id) == {}


# -- staleness ------------------------------------------------------------------------------


class ChainParams(BaseModel):
    sample: int = 100


def chain(b_version: str, sample_used_by_c: bool = False) -> Pipeline:
    @task(uses=())
    def a(run: RunContext) -> int:
        return 1

    @task(version=b_version, uses=())
    def b(run: RunContext, upstream: dict) -> int:
        return upstream["a"] + 1

    @task(needs=["b"], uses=("sample",) if sample_used_by_c else ())
    def c(run: RunContext, upstream: dict) -> int:
        return upstream["b"] + 1

    @task(needs=["a"], uses=())
    def d(run: RunContext, upstream: dict) -> int:
        return upstream["a"] * 10

    return Pipeline("chain", [a, b, c, d], params=ChainParams, inputs=Inputs(min_count=0))


def _with(service: Service, pipeline: Pipeline) -> Service:
    return Service(service.settings, service.store, Registry([pipeline]), service.storage)


def test_changing_a_step_recomputes_it_and_what_depends_on_it_only(service: Service) -> None:
    v1 = _with(service, chain("1"))
    run_id = submit("chain", service=v1)
    run_inline(v1, run_id)
    first = service.store.get_steps(run_id)

    v2 = _with(service, chain("2"))
    run = service.store.get_run(run_id)
    plans = {
        p.name: p.reasons
        for p in plan(
            v2.registry.get("chain"), run, service.store.get_steps(run_id), service.storage
        )
    }
    assert plans == {
        "a": [],
        "b": ["version of `b` 1 → 2"],
        "c": ["upstream step `b` was recomputed"],
        "d": [],
    }

    assert service.store.requeue(run_id, reason="stale results")
    run_inline(v2, run_id)
    second = service.store.get_steps(run_id)
    assert {n: second[n].attempt for n in second} == {"a": 1, "b": 2, "c": 2, "d": 1}
    assert second["a"].started_at == first["a"].started_at
    assert get_run(run_id, service=v2).state == RunState.SUCCEEDED


def test_a_stale_result_accepted_by_staff_is_current(service: Service) -> None:
    v1 = _with(service, chain("1"))
    run_id = submit("chain", service=v1)
    run_inline(v1, run_id)
    v2 = _with(service, chain("2"))
    pipeline = v2.registry.get("chain")
    for p in plan(
        pipeline, service.store.get_run(run_id), service.store.get_steps(run_id), service.storage
    ):
        if p.stale:
            assert service.store.accept_step(run_id, p.name, p.fingerprint.to_dict())
    replanned = plan(
        pipeline, service.store.get_run(run_id), service.store.get_steps(run_id), service.storage
    )
    assert [p.name for p in replanned if p.stale] == []


def test_a_parameter_change_names_old_and_new_values(service: Service) -> None:
    v1 = _with(service, chain("1", sample_used_by_c=True))
    run_id = submit("chain", params={"sample": 100}, service=v1)
    run_inline(v1, run_id)
    run = service.store.get_run(run_id)
    run.params = {"sample": 1000}
    plans = {
        p.name: p.reasons
        for p in plan(
            v1.registry.get("chain"), run, service.store.get_steps(run_id), service.storage
        )
    }
    assert plans["c"] == ["parameter `sample` 100 → 1000"]
    assert plans["b"] == []


def test_a_task_error_in_process_is_user_facing(service: Service) -> None:
    @task
    def explode(run: RunContext) -> None:
        raise TaskError("the spreadsheet has no sheet named 'Data'")

    svc = _with(service, Pipeline("explode", [explode], inputs=Inputs(min_count=0)))
    run_id = submit("explode", service=svc)
    assert run_inline(svc, run_id) == RunState.FAILED
    assert get_run(run_id, service=svc).error == "the spreadsheet has no sheet named 'Data'"


def test_ending_a_unit_can_claim_the_next_one_in_the_same_transaction(service: Service) -> None:
    svc = _with(
        service,
        Pipeline("piggy", [chain("1").steps[0]], queue="piggyback", inputs=Inputs(min_count=0)),
    )
    first, second = submit("piggy", service=svc), submit("piggy", service=svc)
    (claim,) = service.store.claim("w1", queues=["piggyback"], lease=30, run_id=first)
    late = NextClaim("w0", ["piggyback"], 30)
    assert not service.store.finish(
        Claim(claim.unit_id, claim.run_id, claim.attempt - 1),
        RunState.SUCCEEDED,
        Report(),
        then_claim=late,
    )
    assert late.claims == []  # a fenced-out attempt claims nothing either
    following = NextClaim("w1", ["piggyback"], 30)
    assert service.store.finish(claim, RunState.SUCCEEDED, Report(), then_claim=following)
    assert [c.run_id for c in following.claims] == [second]
    assert get_run(second, service=svc).state == RunState.RUNNING

    assert svc.store.finish(following.claims[0], RunState.SUCCEEDED, Report())


def test_a_step_that_returns_after_its_time_limit_does_not_cancel_the_next(
    service: Service,
) -> None:
    status = run_now(service, "overrun")
    assert status.state == RunState.SUCCEEDED
    assert status.result("late_but_done") == "finished after its limit"
    assert status.result("next_step") == {"cancelled_at_start": False}
