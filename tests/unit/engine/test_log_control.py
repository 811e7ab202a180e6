"""Log control: library logging and warnings into the run log at the step's level, and
repeated lines collapsed into a count at the step's end, with bounded memory."""

from __future__ import annotations

import logging
import threading
import warnings

import pytest

from gristmill import DefinitionError, Inputs, Pipeline, RunContext, task
from gristmill.app.service import Service
from gristmill.app.submission import submit
from gristmill.authoring.logcontrol import RepeatCap
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.unit.engine.conftest import MakeService

NONE = Inputs(min_count=0)
library = logging.getLogger("noisy.library")


def run_log(service: Service, pipeline: Pipeline) -> list[tuple[str, str]]:
    run_id = submit(pipeline.name, service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    return [(line.stream, line.text) for line in service.store.read_log(run_id)]


def test_library_records_and_warnings_reach_the_run_log_collapsed(
    make_service: MakeService,
) -> None:
    @task(log_level="WARNING")
    def noisy(run: RunContext) -> None:
        for number in range(5000):
            library.warning("odd value %d", number)
            library.info("never shown")
        for _ in range(100):
            warnings.warn("old API", DeprecationWarning, stacklevel=1)

    pipeline = Pipeline("noisy", [noisy], inputs=NONE)
    log = run_log(make_service(pipeline), pipeline)
    assert log == [
        ("logging", "WARNING noisy.library: odd value 0"),
        ("logging", "WARNING noisy.library: odd value 1"),
        ("logging", "WARNING noisy.library: odd value 2"),
        ("warning", "DeprecationWarning: old API"),
        ("warning", "DeprecationWarning: old API"),
        ("warning", "DeprecationWarning: old API"),
        ("logging", "… 4,997 more like this: WARNING noisy.library: odd value 0"),
        ("warning", "… 97 more like this: DeprecationWarning: old API"),
    ]


def test_a_lower_level_takes_info_without_flooding_the_process_handlers(
    make_service: MakeService,
) -> None:
    seen: list[str] = []

    class Recording(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append(record.getMessage())

    @task(log_level="INFO")
    def chatty(run: RunContext) -> None:
        library.info("progress note")

    pipeline = Pipeline("chatty", [chatty], inputs=NONE)
    root = logging.getLogger()
    recording = Recording()
    root.addHandler(recording)
    level = root.level
    root.setLevel(logging.WARNING)
    try:
        log = run_log(make_service(pipeline), pipeline)
        assert root.level == logging.WARNING  # restored
    finally:
        root.removeHandler(recording)
        root.setLevel(level)
    assert ("logging", "INFO noisy.library: progress note") in log
    assert "progress note" not in seen


def test_without_a_level_library_records_stay_out_and_other_threads_never_get_in(
    make_service: MakeService,
) -> None:
    @task
    def quiet(run: RunContext) -> None:
        library.error("not for the run log")

    @task(log_level="DEBUG")
    def threaded(run: RunContext) -> None:
        other = threading.Thread(target=library.error, args=("from another thread",))
        other.start()
        other.join()
        library.error("from the step")

    pipeline = Pipeline("quiet", [quiet, threaded], inputs=NONE)
    log = run_log(make_service(pipeline), pipeline)
    assert log == [("logging", "ERROR noisy.library: from the step")]


def test_repeated_lines_of_a_step_are_collapsed(make_service: MakeService) -> None:
    @task
    def repeats(run: RunContext) -> None:
        for _ in range(10):
            run.log("same again")
            run.log("")
        run.log("different")

    pipeline = Pipeline("repeats", [repeats], inputs=NONE)
    log = [text for _, text in run_log(make_service(pipeline), pipeline)]
    assert log == [
        "same again",
        "",
        "same again",
        "",
        "same again",
        *[""] * 8,
        "different",
        "… 7 more like this: same again",
    ]


def test_the_repeat_cap_counts_a_bounded_number_of_distinct_lines() -> None:
    cap = RepeatCap(shown=1, tracked=10)
    assert all(cap.admit("log", f"line {n}") for n in range(100))
    assert [cap.admit("log", "line 5") for _ in range(3)] == [False] * 3
    assert all(cap.admit("log", "line 50") for _ in range(3))  # not counted: passes
    assert cap.summary() == [("log", "… 3 more like this: line 5")]
    assert len(cap._counts) == 0


def test_an_unknown_log_level_is_a_definition_error() -> None:
    def step(run: RunContext) -> None:
        return None

    with pytest.raises(DefinitionError, match="log_level must be one of DEBUG, INFO, WARNING"):
        Pipeline("p", [task(log_level="LOUD")(step)])


def test_a_commands_repeated_output_lines_are_collapsed(make_service: MakeService) -> None:
    from gristmill import Command

    loop = Command("loop", ["sh", "-c", "for i in $(seq 1000); do echo same; done; echo end"])
    pipeline = Pipeline("loop", [loop], inputs=NONE)
    log = run_log(make_service(pipeline), pipeline)
    assert log == [
        *[("stdout", "same")] * 3,
        ("stdout", "end"),
        ("stdout", "… 997 more like this: same"),
    ]
