"""The run context: what a task sees, and how it reports while it runs."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from gristmill import CancelledError, InputFile, OutputFile, RunContext, TaskError


class RecordingReporter:
    """A reporter that keeps what it is told, and says cancelled when asked to."""

    def __init__(self, *, cancelled: bool = False):
        self.cancelled = cancelled
        self.logs: list[tuple[str, str]] = []
        self.stages: list[str | None] = []
        self.progress_reports: list[tuple[int, int | None]] = []

    def log(self, text: str, stream: str) -> None:
        self.logs.append((text, stream))

    def stage(self, name: str | None) -> None:
        self.stages.append(name)

    def progress(self, done: int, total: int | None) -> None:
        self.progress_reports.append((done, total))

    def is_cancelled(self) -> bool:
        return self.cancelled


def make_context(
    workdir: Path, reporter: RecordingReporter | None = None, **changes: Any
) -> RunContext:
    options: dict[str, Any] = {
        "run_id": "r1",
        "pipeline": "wordcount",
        "step": "count",
        "inputs": (),
        "params": None,
        "workdir": workdir,
        "upstream": {},
        "reporter": reporter,
    }
    options.update(changes)
    return RunContext(**options)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


# output


def test_output_registers_a_file_in_the_work_directory(workdir: Path) -> None:
    (workdir / "counts.csv").write_bytes(b"word,count\nfox,1\n")
    run = make_context(workdir)

    registered = run.output("counts.csv")

    assert registered == OutputFile(
        name="counts.csv",
        path=(workdir / "counts.csv").resolve(),
        size=17,
        sha256=hashlib.sha256(b"word,count\nfox,1\n").hexdigest(),
        media_type="text/csv",
    )
    assert run.outputs == (registered,)


def test_output_accepts_an_absolute_path_inside_the_work_directory(workdir: Path) -> None:
    (workdir / "plots").mkdir()
    (workdir / "plots" / "bars.png").write_bytes(b"\x89PNG")
    registered = make_context(workdir).output(workdir / "plots" / "bars.png")
    assert (registered.name, registered.media_type) == ("plots/bars.png", "image/png")


def test_output_name_and_media_type_can_be_given(workdir: Path) -> None:
    (workdir / "data").write_bytes(b"{}")
    registered = make_context(workdir).output("data", name="result.json", media_type="x/y")
    assert (registered.name, registered.media_type) == ("result.json", "x/y")


def test_output_of_unknown_type_is_offered_as_bytes(workdir: Path) -> None:
    (workdir / "blob").write_bytes(b"\0")
    assert make_context(workdir).output("blob").media_type == "application/octet-stream"


def test_registering_the_same_name_again_replaces_the_output(workdir: Path) -> None:
    (workdir / "a.txt").write_text("first")
    run = make_context(workdir)
    run.output("a.txt")
    (workdir / "a.txt").write_text("second!")
    run.output("a.txt")
    assert [(o.name, o.size) for o in run.outputs] == [("a.txt", 7)]


def test_output_outside_the_work_directory_is_refused(workdir: Path) -> None:
    (workdir.parent / "x").write_text("elsewhere")
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output("../x")
    assert caught.value.message == "output '../x' is outside the step's work directory"


def test_output_through_a_link_leading_outside_is_refused(workdir: Path) -> None:
    (workdir.parent / "secret").write_text("elsewhere")
    (workdir / "link").symlink_to(workdir.parent / "secret")
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output("link")
    assert caught.value.message == "output 'link' is outside the step's work directory"


def test_an_absolute_path_is_shown_relative_to_the_work_directory(workdir: Path) -> None:
    (workdir / "plots").mkdir()
    (workdir / "plots" / "link").symlink_to(workdir.parent / "secret")
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output(workdir / "plots" / "link")
    assert caught.value.message == "output 'plots/link' is outside the step's work directory"


def test_a_path_elsewhere_on_the_server_is_shown_by_its_name_only(workdir: Path) -> None:
    (workdir.parent / "inputs").mkdir()
    (workdir.parent / "inputs" / "data.csv").write_text("a,b")
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output(workdir.parent / "inputs" / "data.csv")
    assert caught.value.message == "output 'data.csv' is outside the step's work directory"


def test_a_missing_output_is_refused(workdir: Path) -> None:
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output("missing.csv")
    assert caught.value.message == "output 'missing.csv' does not exist or is not a file"


def test_a_directory_as_output_is_refused(workdir: Path) -> None:
    (workdir / "plots").mkdir()
    with pytest.raises(TaskError) as caught:
        make_context(workdir).output("plots")
    assert caught.value.message == "output 'plots' does not exist or is not a file"


# reporting


def test_stage_reports_the_stage_then_none(workdir: Path) -> None:
    reporter = RecordingReporter()
    run = make_context(workdir, reporter)
    with run.stage("counting"):
        assert reporter.stages == ["counting"]
    assert reporter.stages == ["counting", None]


def test_stage_reports_none_when_the_block_fails(workdir: Path) -> None:
    reporter = RecordingReporter()
    run = make_context(workdir, reporter)
    with pytest.raises(TaskError), run.stage("counting"):
        raise TaskError("bad line")
    assert reporter.stages == ["counting", None]


def test_log_sends_the_message_to_the_log_stream(workdir: Path) -> None:
    reporter = RecordingReporter()
    make_context(workdir, reporter).log("3 lines")
    assert reporter.logs == [("3 lines", "log")]


def test_progress_is_reported(workdir: Path) -> None:
    reporter = RecordingReporter()
    run = make_context(workdir, reporter)
    run.progress(3, 10)
    run.progress(4)
    assert reporter.progress_reports == [(3, 10), (4, None)]


@pytest.mark.parametrize(("done", "total"), [(-1, 10), (1, -10)])
def test_progress_rejects_negative_counts(workdir: Path, done: int, total: int) -> None:
    with pytest.raises(ValueError) as caught:
        make_context(workdir).progress(done, total)
    assert str(caught.value) == "progress counts cannot be negative"


def test_check_cancelled_raises_when_the_run_was_cancelled(workdir: Path) -> None:
    run = make_context(workdir, RecordingReporter(cancelled=True))
    with pytest.raises(CancelledError) as caught:
        run.check_cancelled()
    assert caught.value.message == "the run was cancelled"


def test_check_cancelled_does_nothing_while_the_run_goes_on(workdir: Path) -> None:
    run = make_context(workdir, RecordingReporter())
    run.check_cancelled()
    assert run.cancelled is False


def test_a_context_without_reporter_reports_nowhere(workdir: Path) -> None:
    run = make_context(workdir)
    run.log("ignored")
    run.progress(1, 2)
    with run.stage("quiet"):
        run.check_cancelled()
    assert run.cancelled is False


# inputs


def test_input_is_the_first_input(workdir: Path, tmp_path: Path) -> None:
    first = InputFile("a.txt", tmp_path / "a.txt", 1, "00", "text/plain")
    second = InputFile("b.txt", tmp_path / "b.txt", 1, "11", "text/plain")
    assert make_context(workdir, inputs=(first, second)).input is first


def test_input_without_inputs_is_a_task_error(workdir: Path) -> None:
    with pytest.raises(TaskError) as caught:
        make_context(workdir).input  # noqa: B018
    assert caught.value.message == "this pipeline needs an input file, and none was given"


def test_an_input_file_extension_is_lower_case_without_the_dot(tmp_path: Path) -> None:
    item = InputFile("Data.JSON", tmp_path / "d", 1, "00", "application/json")
    assert item.extension == "json"


def test_an_input_file_cannot_be_opened_for_writing(tmp_path: Path) -> None:
    item = InputFile("d.txt", tmp_path / "d.txt", 1, "00", "text/plain")
    with pytest.raises(ValueError) as caught:
        item.open("w")
    assert str(caught.value) == "inputs are read-only"
