"""Filtered runs on the memory store, run inline: a new run from the items of an earlier run
that match a path and a value, or that have a finding of a kind; the path syntax; refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gristmill import Inputs, Pipeline, RunContext, items, map_step, task
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.filters import ItemFilter, parse_path, same_json, select
from gristmill.authoring.inputs import LocalFile, RunItems
from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.unit.engine.conftest import MakeService


def pipelines() -> list[Pipeline]:
    @map_step(items=items.json_lines(), batch_size=7)
    def check(item: Any, run: RunContext) -> Any:
        if item["n"] % 10 == 0:
            return [{"kind": "tens"}, {"kind": "tens-again"}]
        return {"kind": "odd"} if item["n"] % 2 else None

    @task
    def total(run: RunContext) -> dict[str, Any]:
        lines = run.input.path.read_text(encoding="utf-8").splitlines()
        return {"name": run.input.name, "ns": [json.loads(line)["n"] for line in lines]}

    kinds = Inputs(kinds=["file", "items"])
    return [
        Pipeline("source", [check, total], inputs=kinds),
        Pipeline("other", [total], inputs=kinds),
        Pipeline("no-items", [total], inputs=Inputs(kinds=["file"])),
    ]


@pytest.fixture
def source(make_service: MakeService, tmp_path: Path) -> tuple[Service, str]:
    service = make_service(*pipelines())
    path = tmp_path / "data.jsonl"
    rows = [{"n": n, "group": {"id": "a" if n % 3 else "b"}, "tags": [n % 4]} for n in range(1, 41)]
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    run_id = submit("source", [LocalFile(path)], service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    return service, run_id


def run(service: Service, pipeline: str, given: RunItems) -> Any:
    run_id = submit(pipeline, [given], service=service)
    state = run_inline(service, run_id)
    status = get_run(run_id, service=service)
    return state, status


def test_a_filtered_run_takes_the_items_where_a_path_has_a_value(
    source: tuple[Service, str],
) -> None:
    service, run_id = source
    state, status = run(service, "other", RunItems(run_id, "check", where="$.group.id", value="b"))
    assert state == RunState.SUCCEEDED, status.error
    assert status.result("total") == {
        "name": "items.jsonl",
        "ns": [3, 6, 9, 12, 15, 18, 21, 24, 27, 30, 33, 36, 39],
    }
    assert json.loads(status.run.inputs[0].source)["run"] == run_id
    _, status = run(service, "other", RunItems(run_id, where="$.tags[0]", value=0))
    assert status.result("total")["ns"] == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40]


def test_a_filtered_run_takes_the_items_with_a_finding_once_each(
    source: tuple[Service, str],
) -> None:
    service, run_id = source
    state, status = run(service, "source", RunItems(run_id, "check", finding="tens"))
    assert state == RunState.SUCCEEDED, status.error
    assert status.result("total")["ns"] == [10, 20, 30, 40]
    assert status.result("check")["counts"] == {"tens": 4, "tens-again": 4}


def test_no_matching_item_fails_the_run_saying_so(source: tuple[Service, str]) -> None:
    service, run_id = source
    state, status = run(service, "other", RunItems(run_id, where="$.group.id", value="c"))
    assert state == RunState.FAILED
    assert (
        status.error == f'no item of step `check` of run {run_id} matches: where $.group.id == "c"'
    )


@pytest.mark.parametrize(
    ("given", "message"),
    [
        (RunItems("x", "check", finding="tens"), "no run with id 'x'"),
        (RunItems("{run}", "nope", finding="tens"), "has no map step 'nope'"),
        (RunItems("{run}", "check", where="buyer.id", value=1), 'a path starts with "$"'),
        (RunItems("{run}", "check", where="$.a..b", value=1), "at character 4"),
        (RunItems("{run}", "check"), "a path and a value (where), or a finding kind"),
    ],
)
def test_a_bad_filter_is_refused_before_anything_is_queued(
    source: tuple[Service, str], given: RunItems, message: str
) -> None:
    service, run_id = source
    given.run_id = given.run_id.replace("{run}", run_id)
    with pytest.raises(SubmissionError) as refused:
        submit("other", [given], service=service)
    assert message in refused.value.errors["inputs"][0]


def test_a_pipeline_that_takes_no_items_refuses_them(source: tuple[Service, str]) -> None:
    service, run_id = source
    with pytest.raises(SubmissionError, match="items"):
        submit("no-items", [RunItems(run_id, finding="tens")], service=service)


def test_the_path_syntax() -> None:
    assert parse_path("$") == ()
    assert parse_path('$.buyer["the id"][2].x-y') == ("buyer", "the id", 2, "x-y")
    item = {"a": [{"b": 1}], "t": True}
    assert select(item, parse_path("$.a[0].b")) == 1
    assert not same_json(select(item, parse_path("$.a[1].b")), None)
    assert same_json(1, 1.0) and not same_json(True, 1) and not same_json("1", 1)
    assert same_json(select(item, parse_path("$.t")), True)
    spec = ItemFilter("r", "s", where="$.a", value=[1])
    assert ItemFilter.from_source(spec.to_source()) == spec
