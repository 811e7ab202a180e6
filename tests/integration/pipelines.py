"""Pipelines used by the integration tests (loaded by file path, as users do)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from gristmill import Command, Inputs, Pipeline, RunContext, Task, TaskError, task
from gristmill.library import (
    DetectFormat,
    FieldStatistics,
    JsonToSpreadsheet,
    Sample,
    SpreadsheetToJson,
    ValidateSchema,
)

OPTIONAL = Inputs(min_count=0)


class Params(BaseModel):
    control: str = ""
    value: int = 1


@task
def one(run: RunContext) -> dict[str, Any]:
    return {"ok": True, "value": run.params.value}


trivial = Pipeline("trivial", [one], params=Params, inputs=OPTIONAL)


def _constant(i: int) -> Any:
    def constant(run: RunContext) -> int:
        return i

    return task(name=f"s{i}")(constant)


ten = Pipeline("ten", [_constant(i) for i in range(10)], inputs=OPTIONAL)


def _wait_for_release(run: RunContext, control: Path) -> None:
    deadline = time.monotonic() + 60
    while not (control / "release").exists():
        run.check_cancelled()
        if time.monotonic() > deadline:
            raise TaskError("the test never released this step")
        time.sleep(0.01)


@task(name="hold")
def hold(run: RunContext) -> dict[str, Any]:
    """Blocks on its first attempt until the test creates control/release."""
    control = Path(run.params.control)
    (control / f"started-{run.attempt}").write_text(str(os.getpid()))
    if run.attempt == 1 or (control / "hold-always").exists():
        _wait_for_release(run, control)
    path = run.workdir / "out.txt"
    path.write_text(f"attempt {run.attempt}")
    run.output(path)
    (control / f"finished-{run.attempt}").touch()
    return {"attempt": run.attempt, "pid": os.getpid()}


@task
def after(run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
    return {"saw_attempt": upstream["hold"]["attempt"]}


holding = Pipeline("holding", [one, hold, after], params=Params, inputs=OPTIONAL)


@task
def kill_my_worker(run: RunContext) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


crashing = Pipeline("crashing", [kill_my_worker], max_attempts=3, inputs=OPTIONAL)


@task
def bad_data(run: RunContext) -> None:
    raise TaskError("row 3 has no 'id' field")


failing = Pipeline("failing", [one, bad_data, after], params=Params, inputs=OPTIONAL)


@task
def broken(run: RunContext) -> None:
    raise ZeroDivisionError("division by zero")


internal = Pipeline("internal", [broken], inputs=OPTIONAL)


@task
def returns_a_set(run: RunContext) -> Any:
    return {"values": {1, 2}}


not_json = Pipeline("not-json", [returns_a_set], inputs=OPTIONAL)


@task(timeout=0.3)
def cooperative_slowpoke(run: RunContext) -> None:
    while True:
        run.check_cancelled()
        time.sleep(0.01)


timing_out = Pipeline("timing-out", [cooperative_slowpoke], inputs=OPTIONAL)


@task(timeout=0.3)
def stubborn_slowpoke(run: RunContext) -> None:
    (Path(run.params.control) / f"started-{run.attempt}").write_text(str(os.getpid()))
    time.sleep(60)


stubborn = Pipeline("stubborn", [stubborn_slowpoke], params=Params, inputs=OPTIONAL)


class NotForJson(Task):
    def is_applicable(self, run: RunContext) -> bool:
        return run.input.extension != "json"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> str:
        return "processed"


skipping = Pipeline("skipping", [NotForJson, one], params=Params)


@task
def report_progress(run: RunContext) -> str:
    run.log("first line")
    with run.stage("halfway"):
        run.progress(5, 10)
        run.log("second line")
    return "done"


reporting = Pipeline("reporting", [report_progress], inputs=OPTIONAL)


@task(timeout=0.2)
def late_but_done(run: RunContext) -> str:
    while not run.cancelled:
        time.sleep(0.01)
    return "finished after its limit"


@task
def next_step(run: RunContext) -> dict[str, bool]:
    return {"cancelled_at_start": run.cancelled}


overrun = Pipeline("overrun", [late_but_done, next_step], inputs=OPTIONAL)


# -- for the REST API tests --------------------------------------------------------------

picky = Pipeline(
    "picky",
    [one],
    params=Params,
    inputs=Inputs(kinds=["file", "text"], extensions=["txt", "csv"], max_size=16, max_count=2),
)


class ReportParams(BaseModel):
    title: str = "report"


class WriteReport(Task):
    """Writes two outputs (one in a subdirectory) and shows a summary of its result."""

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        lines = run.input.path.read_text().splitlines()
        (run.workdir / "report.txt").write_text(f"{run.params.title}\n{len(lines)} lines\n")
        run.output("report.txt")
        (run.workdir / "tables").mkdir()
        (run.workdir / "tables" / "counts.csv").write_text(f"lines\n{len(lines)}\n")
        run.output("tables/counts.csv")
        return {"title": run.params.title, "lines": len(lines)}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        return {"summary": f"{result['title']}: {result['lines']} lines of {run.input.name}"}


class BrokenContext(Task):
    """Succeeds, but cannot show its result."""

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> int:
        return 1

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")


reports = Pipeline("reports", [WriteReport, BrokenContext], params=ReportParams)


# -- for the web page tests --------------------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class TableParams(BaseModel):
    top: int = Field(10, ge=1, description="How many rows to show")
    ratio: float = 0.5
    loud: bool = True
    colour: Colour = Colour.RED
    label: str = "table"
    exclude: list[str] = Field(default_factory=list, description="Words to leave out")

    @model_validator(mode="after")
    def _loud_tables_are_short(self) -> TableParams:
        if self.loud and self.top > 100:
            raise ValueError("a loud table shows at most 100 rows")
        return self


@task(title="Tabulate")
def tabulate(run: RunContext) -> dict[str, Any]:
    return {
        "label": run.params.label,
        "rows": [{"word": "mill", "count": 3}, {"word": "grist", "count": 2}],
        "tags": ["<b>plain</b>", "text"],
        "nested": {"depth": {"level": 2}},
        "missing": None,
    }


class Greet(Task):
    """Shows its context with a template of its own."""

    title = "Greeting"
    template = "web_tests/greeting.html"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, str]:
        return {"greeting": f"hello from {run.params.colour}"}


tabular = Pipeline(
    "tabular",
    [tabulate, Greet],
    title="Tables",
    description="Shows a result as tables.",
    params=TableParams,
    inputs=OPTIONAL,
)

json_only = Pipeline("json-only", [one], params=Params, inputs=Inputs(kinds=["json"]))


members_only = Pipeline("members-only", [one], params=Params, inputs=OPTIONAL, access="signed-in")
staff_only = Pipeline("staff-only", [one], params=Params, inputs=OPTIONAL, access="staff")
superusers_only = Pipeline(
    "superusers-only", [one], params=Params, inputs=OPTIONAL, access="superuser"
)


@task
def list_inputs(run: RunContext) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "kind": f.kind, "source": f.source, "text": f.path.read_text()}
        for f in run.inputs
    ]


any_source = Pipeline(
    "any-source",
    [list_inputs],
    inputs=Inputs(kinds=["file", "text", "url", "datafile", "run"], max_count=5, max_size=4096),
)


# -- for the cancellation tests ----------------------------------------------------------


class CancelParams(BaseModel):
    control: str = ""
    seconds: float = 0.3
    size: int = 0


def _mark(run: RunContext, what: str) -> None:
    """Tell the test that the step got here (a file named for the run and ``what``)."""
    (Path(run.params.control) / f"{run.run_id}-{what}").touch()


@task
def silent(run: RunContext) -> int:
    """Reports nothing and never looks whether it was cancelled."""
    _mark(run, "silent")
    time.sleep(run.params.seconds)
    return 1


@task
def counting(run: RunContext) -> int:
    """Reports progress and stops when cancelled; never ends on its own."""
    deadline = time.monotonic() + 20
    done = 0
    while time.monotonic() < deadline:
        done += 1
        run.progress(done)
        if done == 10:
            _mark(run, "counting")
        run.check_cancelled()
        time.sleep(0.001)
    raise TaskError("the test never cancelled this step")


@task
def last(run: RunContext) -> str:
    """Returns at once, with ``size`` bytes of result: the write that ends the run."""
    _mark(run, "last")
    return "x" * run.params.size


cancel_silent = Pipeline("cancel-silent", [silent, last], params=CancelParams, inputs=OPTIONAL)
cancel_progress = Pipeline(
    "cancel-progress", [counting, last], params=CancelParams, inputs=OPTIONAL
)
cancel_last = Pipeline("cancel-last", [last], params=CancelParams, inputs=OPTIONAL)
cancel_steps = Pipeline(
    "cancel-steps", [*(_constant(i) for i in range(20)), last], params=CancelParams, inputs=OPTIONAL
)


# -- files handed on between steps (test_handing_on.py) ------------------------------------

_UPPER = (
    "import sys; t = open(sys.argv[1]).read(); open('upper.txt', 'w').write(t.upper()); "
    "print('read', sys.argv[1])"
)


@task(needs=["upper"], staff_only=("where",))
def shout(run: RunContext) -> dict[str, Any]:
    """Reads the first step's file; with a control directory, kills its worker on attempt 1."""
    if run.params.control and run.attempt == 1:
        (Path(run.params.control) / "started-1").write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    (made,) = run.upstream_files("upper")
    run.log(f"reading {made.path}")
    with made.open("r") as text:
        return {"text": text.read(), "attempt": run.attempt, "where": str(made.path)}


handing_on = Pipeline(
    "handing-on",
    [
        Command("upper", [sys.executable, "-c", _UPPER, "{input}"], outputs=["upper.txt"]),
        Command("count", ["wc", "-c", "{outputs.upper}"]),
        shout,
    ],
    params=Params,
    inputs=Inputs(kinds=["file", "text"]),
    max_attempts=3,
)


# -- inputs checked by content (test_content_types.py) --------------------------------------

json_or_csv = Pipeline(
    "json-or-csv",
    [list_inputs],
    inputs=Inputs(kinds=["file", "url"], extensions=["json", "csv"], max_count=3),
)


# -- log control (test_handing_on.py) -------------------------------------------------------


@task(log_level="WARNING")
def noisy(run: RunContext) -> dict[str, int]:
    """A third-party library that logs and warns far too much."""
    import logging
    import warnings

    chatty = logging.getLogger("chatty.library")
    for number in range(2000):
        chatty.warning("odd value %d in %s", number, run.input.path)
        chatty.info("not at this level")
        warnings.warn("this API is old", DeprecationWarning, stacklevel=1)
    return {"checked": 2000}


noisy_library = Pipeline("noisy-library", [noisy], inputs=Inputs(kinds=["file", "text"]))


# -- the task library (test_library.py) -----------------------------------------------------

PARTY_SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "parties": {
            "type": "array",
            "items": {"type": "object", "properties": {"name": {"type": "string"}}},
        },
    },
}


class CheckParams(BaseModel):
    sample: int = Field(0, ge=0, description="Check only this many items (0: all)")


DATA = ("Sample", "SpreadsheetToJson")

library_check = Pipeline(
    "library-check",
    [
        DetectFormat(),
        SpreadsheetToJson(),
        Sample(param="sample", mode="random", seed=1, source=("SpreadsheetToJson",)),
        ValidateSchema(PARTY_SCHEMA, source=DATA),
        FieldStatistics(PARTY_SCHEMA, source=DATA),
        JsonToSpreadsheet(source=("SpreadsheetToJson",)),
    ],
    params=CheckParams,
    inputs=Inputs(kinds=["file"]),
)
