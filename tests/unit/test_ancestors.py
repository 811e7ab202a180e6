"""``run.ancestor`` as a step sees it, and the pipeline options that choose it."""

from __future__ import annotations

from pathlib import Path

import pytest

from gristmill import DefinitionError, Pipeline, RunContext, TaskError, task
from gristmill.authoring.context import Ancestor, AncestorRecord, OutputFile


@task
def only(run: RunContext) -> None:
    return None


def record() -> AncestorRecord:
    out = OutputFile("report.csv", Path("report.csv"), 3, "ab", "text/csv")
    return AncestorRecord("p", {"count": {"n": 3}}, (), {"count": (out,), "other": ()})


def test_an_ancestor_is_read_once_when_first_asked_for() -> None:
    loads: list[int] = []

    def load() -> AncestorRecord:
        loads.append(1)
        return record()

    ancestor = Ancestor("run-1", load)
    assert (ancestor.id, loads) == ("run-1", [])
    assert ancestor.result("count") == {"n": 3}
    assert [o.name for o in ancestor.outputs()] == ["report.csv"]
    assert ancestor.outputs("other") == ()
    assert ancestor.pipeline == "p"
    assert loads == [1]


def test_a_step_the_ancestor_has_no_result_of_is_a_task_error() -> None:
    ancestor = Ancestor("run-1", record)
    with pytest.raises(TaskError) as missing:
        ancestor.result("convert")
    assert missing.value.message == (
        "the ancestor run run-1 has no result of step 'convert' (it has: count)"
    )


def test_the_ancestor_options_are_checked_when_the_pipeline_is_defined() -> None:
    assert Pipeline("a", [only]).ancestors_from == ("a",)
    assert Pipeline("a", [only], ancestor="previous", ancestors_from="b").ancestors_from == (
        "a",
        "b",
    )
    with pytest.raises(DefinitionError, match="ancestor 'last' is not one of"):
        Pipeline("a", [only], ancestor="last")
