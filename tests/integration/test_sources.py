"""Inputs that do not come with the request: the outputs of an earlier run (and, over the
API, URLs and data files), through the one way in, :func:`gristmill.submission.submit`."""

from __future__ import annotations

import pytest

from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.inputs import RunOutputs, TextInput
from gristmill.runs import RunState
from gristmill.service import Service
from gristmill.submission import get_run, submit


def report(service: Service) -> str:
    run_id = submit("reports", [TextInput("a\nb\nc")], {"title": "T"}, service=service)
    run_inline(service, run_id)
    return run_id


def test_an_earlier_runs_outputs_become_the_inputs_of_a_new_run(service: Service) -> None:
    earlier = report(service)
    run_id = submit("any-source", [RunOutputs(earlier)], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("list_inputs") == [
        {
            "name": "report.txt",
            "kind": "run",
            "source": f"run {earlier}: WriteReport/report.txt",
            "text": "T\n3 lines\n",
        },
        {
            "name": "counts.csv",
            "kind": "run",
            "source": f"run {earlier}: WriteReport/tables/counts.csv",
            "text": "lines\n3\n",
        },
    ]


def test_the_outputs_of_one_step_only(service: Service) -> None:
    earlier = report(service)
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(earlier, step="BrokenContext")], service=service)
    assert refused.value.errors == {
        "inputs": [f"step 'BrokenContext' of run {earlier} has no output files"]
    }


def test_a_run_that_has_not_succeeded_is_refused(service: Service) -> None:
    queued = submit("trivial", service=service)
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(queued)], service=service)
    assert refused.value.errors == {
        "inputs": [f"run {queued} has not succeeded (it is queued); use a run that has"]
    }


def test_an_unknown_run_is_refused(service: Service) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(unknown)], service=service)
    assert refused.value.errors == {"inputs": [f"no run with id {unknown!r}"]}


def test_a_pipeline_that_does_not_take_run_outputs_refuses_them(service: Service) -> None:
    earlier = report(service)
    with pytest.raises(SubmissionError) as refused:
        submit("json-only", [RunOutputs(earlier)], service=service)
    assert refused.value.status == 400
    assert list(refused.value.errors) == ["inputs"]
