"""The planner on the memory store: which stored results are stale, and why, in words."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

from gristmill import Inputs, Pipeline, RunContext, TaskError, task
from gristmill.app.service import Service
from gristmill.app.submission import submit
from gristmill.engine.planner import plan
from gristmill.executors.inline import run_inline
from tests.unit.engine.conftest import MakeService


class Sample(BaseModel):
    sample: int = 100
    fail_at_c: bool = False


def chain(b_version: str = "1", *, a_applies: bool = True) -> Pipeline:
    @task(uses=(), applicable=lambda run: a_applies)
    def a(run: RunContext) -> int:
        return 1

    @task(version=b_version, uses=())
    def b(run: RunContext, upstream: Mapping[str, Any]) -> int:
        return (upstream["a"] or 0) + 1

    @task(needs=["b"], uses=("sample", "fail_at_c"))
    def c(run: RunContext, upstream: Mapping[str, Any]) -> int:
        if run.params.fail_at_c:
            raise TaskError("c failed")
        return upstream["b"] + run.params.sample

    @task(needs=["a"], uses=())
    def d(run: RunContext, upstream: Mapping[str, Any]) -> int:
        return 10

    return Pipeline("chain", [a, b, c, d], params=Sample, inputs=Inputs(min_count=0))


def ran(service: Service, **params: Any) -> str:
    run_id = submit("chain", params=params, service=service)
    run_inline(service, run_id)
    return run_id


def reasons(service: Service, pipeline: Pipeline, run_id: str, **params: Any) -> dict[str, Any]:
    run, steps = service.store.get_run_and_steps(run_id)
    run.params.update(params)
    return {p.name: p.reasons for p in plan(pipeline, run, steps, service.storage)}


def test_a_run_just_made_is_current(make_service: MakeService) -> None:
    service = make_service(chain())
    run_id = ran(service)
    assert reasons(service, chain(), run_id) == {"a": [], "b": [], "c": [], "d": []}


def test_a_new_version_makes_the_step_and_its_dependants_stale(make_service: MakeService) -> None:
    service = make_service(chain("1"))
    run_id = ran(service)
    assert reasons(service, chain("2"), run_id) == {
        "a": [],
        "b": ["version of `b` 1 → 2"],
        "c": ["upstream step `b` was recomputed"],
        "d": [],
    }


def test_a_parameter_change_names_old_and_new_values(make_service: MakeService) -> None:
    service = make_service(chain())
    run_id = ran(service, sample=100)
    assert reasons(service, chain(), run_id, sample=1000)["c"] == ["parameter `sample` 100 → 1000"]


def test_steps_never_computed_say_so(make_service: MakeService) -> None:
    service = make_service(chain())
    run_id = ran(service, fail_at_c=True)
    planned = reasons(service, chain(), run_id)
    assert planned["d"] == ["not computed yet"]


def test_a_change_of_applicability_is_named(make_service: MakeService) -> None:
    service = make_service(chain(a_applies=False))
    run_id = ran(service)
    planned = reasons(service, chain(a_applies=True), run_id)
    assert planned["a"] == ["the step now applies to this run"]
    assert planned["d"] == ["upstream step `a` was recomputed"]


def test_an_accepted_stale_result_is_current(make_service: MakeService) -> None:
    service = make_service(chain("1"))
    run_id = ran(service)
    run, steps = service.store.get_run_and_steps(run_id)
    for step in plan(chain("2"), run, steps, service.storage):
        if step.stale:
            assert service.store.accept_step(run_id, step.name, step.fingerprint.to_dict())
    assert reasons(service, chain("2"), run_id) == {"a": [], "b": [], "c": [], "d": []}
