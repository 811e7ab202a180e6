"""The "evaluate Python" step: code execution, off unless enabled, for superuser pipelines."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from gristmill import DefinitionError, Inputs, Pipeline, RunState
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.executors.inline import run_inline
from gristmill.library import EvaluatePython
from gristmill.library.python import python_steps_allowed


class Code(BaseModel):
    code: str = "print('hello')"


def pipeline() -> Pipeline:
    return Pipeline(
        "python", [EvaluatePython()], params=Code, access="superuser", inputs=Inputs(kinds=["file"])
    )


def run_code(tmp_path: Path, code: str) -> tuple[str, Service, str]:
    service = Service.in_memory([pipeline()], tmp_path / "data")
    data = tmp_path / "words.txt"
    data.write_text("three little words", encoding="utf-8")
    run_id = submit("python", [data], {"code": code}, service=service)
    return run_inline(service, run_id), service, run_id


def test_a_pipeline_with_the_step_must_be_for_superusers() -> None:
    with pytest.raises(DefinitionError) as error:
        Pipeline("python", [EvaluatePython()], params=Code, access="staff")
    assert str(error.value) == (
        "pipeline 'python', step 'evaluate_python': this step runs code sent with the run (code "
        "execution), so the pipeline must be for superusers only: access='superuser'"
    )


def test_it_is_off_unless_the_setting_enables_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GRISTMILL_ALLOW_PYTHON_STEPS", raising=False)

    state, service, run_id = run_code(tmp_path, "print('hi')")

    assert state == RunState.FAILED
    assert get_run(run_id, service=service).error == (
        "running Python code is turned off on this server; an administrator can turn it on with "
        "GRISTMILL_ALLOW_PYTHON_STEPS=1"
    )


def test_enabled_it_runs_the_code_on_the_input(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRISTMILL_ALLOW_PYTHON_STEPS", "1")
    code = "import sys; print(len(open(sys.argv[1]).read().split()))"

    state, service, run_id = run_code(tmp_path, code)

    assert state == RunState.SUCCEEDED
    assert get_run(run_id, service=service).result("evaluate_python")["stdout_tail"] == "3"


@pytest.mark.parametrize(
    ("value", "allowed"), [("1", True), ("on", True), ("0", False), ("", False)]
)
def test_the_setting_s_values(value: str, allowed: bool) -> None:
    assert python_steps_allowed({"GRISTMILL_ALLOW_PYTHON_STEPS": value}) is allowed
