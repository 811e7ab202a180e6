"""Command steps: argv templates checked at definition, tools run without a shell."""

from __future__ import annotations

import hashlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from gristmill.authoring.commands import Command
from gristmill.authoring.context import InputFile, RunContext
from gristmill.errors import CancelledError, DefinitionError, StepTimeoutError, TaskError

PY = sys.executable


def py(script: str) -> list[str]:
    """argv running a Python script; its braces are doubled, as the template requires."""
    return [PY, "-c", script.replace("{", "{{").replace("}", "}}")]


class Params(BaseModel):
    name: str = "report"
    count: int = 3
    ratio: float = 0.5
    strict: bool = True
    tags: list[str] = ["a"]
    missing: str | None = None


class RecordingReporter:
    """Records log lines; cancels the run when a line equal to ``cancel_on`` is logged."""

    def __init__(self, cancel_on: str | None = None) -> None:
        self.lines: list[tuple[str, str]] = []
        self.cancel_on = cancel_on
        self.cancelled = False

    def log(self, text: str, stream: str) -> None:
        self.lines.append((stream, text))
        if text == self.cancel_on:
            self.cancelled = True

    def stage(self, name: str | None) -> None:
        pass

    def progress(self, done: int, total: int | None) -> None:
        pass

    def is_cancelled(self) -> bool:
        return self.cancelled

    def stream(self, name: str) -> list[str]:
        return [text for stream, text in self.lines if stream == name]


def make_input(path: Path, content: str = "one\ntwo\nthree\n") -> InputFile:
    path.write_text(content)
    digest = hashlib.sha256(content.encode()).hexdigest()
    return InputFile(path.name, path, len(content), digest, "text/plain")


@pytest.fixture
def reporter() -> RecordingReporter:
    return RecordingReporter()


@pytest.fixture
def make_run(tmp_path: Path, reporter: RecordingReporter) -> Any:
    def make(inputs: tuple[InputFile, ...] = (), **params: Any) -> RunContext:
        return RunContext(
            run_id="run-1",
            pipeline="demo",
            step="step",
            inputs=inputs,
            params=Params(**params),
            workdir=tmp_path / "work",
            upstream={},
            reporter=reporter,
        )

    return make


def wait_until(condition: Callable[[], bool], seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


def process_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A killed process whose parent died waits as a zombie until init reaps it.
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# Definition


def test_a_shell_string_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("count", "wc -l {input}")
    assert str(caught.value) == (
        "step 'count': argv must be a list of arguments, not a shell string: 'wc -l {input}' "
        "(write it as a list: ['wc', '-l', '{input}'])"
    )


def test_a_user_value_inside_an_argument_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("greet", ["echo", "--name={params.name}"])
    assert str(caught.value) == (
        "step 'greet': argument '--name={params.name}' puts {params.name} inside other text; "
        "user values fill whole arguments, so give the option and the value as two arguments: "
        "['--name', '{params.name}']"
    )


def test_an_input_inside_an_argument_is_refused() -> None:
    with pytest.raises(DefinitionError, match=r"argument 'in:\{input\}' puts \{input\} inside"):
        Command("cat", ["cat", "in:{input}"])


def test_an_unknown_placeholder_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("tool", ["tool", "{output}"])
    assert str(caught.value) == (
        "step 'tool': argument '{output}' has an unknown placeholder {output}; the known "
        "placeholders are {input}, {inputs}, {params.NAME}, {outputs.STEP}, "
        "{outputs.STEP.NAME} and {workdir} "
        "(write {{ and }} for literal braces)"
    )


def test_params_without_a_name_is_an_unknown_placeholder() -> None:
    with pytest.raises(DefinitionError, match=r"unknown placeholder \{params\};"):
        Command("tool", ["tool", "{params}"])


def test_an_unmatched_brace_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("tool", ["tool", "{input"])
    assert str(caught.value) == (
        "step 'tool': argument '{input' has an unmatched '{'; the known placeholders are "
        "{input}, {inputs}, {params.NAME}, {outputs.STEP}, {outputs.STEP.NAME} and {workdir} "
        "(write {{ and }} for literal braces)"
    )


def test_a_placeholder_as_the_program_is_refused() -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("run", ["{input}", "--help"])
    assert str(caught.value) == "step 'run': argv[0] must name the program literally, not '{input}'"


def test_an_empty_program_is_refused() -> None:
    with pytest.raises(DefinitionError, match="argv\\[0\\] must name the program literally"):
        Command("run", ["", "x"])


@pytest.mark.parametrize("pattern", ["/tmp/*.csv", "../*.csv", "out/../../x"])
def test_an_output_pattern_outside_the_workdir_is_refused(pattern: str) -> None:
    with pytest.raises(DefinitionError) as caught:
        Command("tool", ["tool"], outputs=[pattern])
    assert str(caught.value) == (
        f"step 'tool': output pattern {pattern!r} must be relative to the work directory, "
        "without '..'"
    )


def test_exit_codes_must_be_small_integers() -> None:
    with pytest.raises(DefinitionError, match="ok_codes must be a list of exit codes from 0 to"):
        Command("tool", ["tool"], ok_codes=[0, 256])


def test_workdir_may_sit_inside_an_argument() -> None:
    command = Command("tool", ["tool", "--out={workdir}/x.csv"])
    assert command.param_names() == set()


def test_the_parameters_used_are_those_in_the_template() -> None:
    command = Command("tool", ["tool", "{params.name}", "--n", "{params.count}", "{params.name}"])
    assert command.param_names() == {"name", "count"}
    assert command.uses == ("count", "name")


def test_identity_names_the_program() -> None:
    assert Command("count", ["wc", "-l", "{input}"]).identity == "command:wc"


def test_code_fingerprint_follows_the_argv() -> None:
    first = Command("count", ["wc", "-l", "{input}"])
    same = Command("count", ["wc", "-l", "{input}"])
    other = Command("count", ["wc", "-w", "{input}"])
    assert first.code_fingerprint() == same.code_fingerprint()
    assert first.code_fingerprint() != other.code_fingerprint()


# Arguments


def test_input_becomes_its_absolute_path(make_run: Any, tmp_path: Path) -> None:
    run = make_run((make_input(tmp_path / "lines.txt"),))
    result = Command("count", ["wc", "-l", "{input}"]).process(run, {})
    assert result["stdout_tail"].split() == ["3", str(tmp_path / "lines.txt")]


def test_the_result_shows_inputs_by_name_and_the_work_directory_as_dot(
    make_run: Any, tmp_path: Path
) -> None:
    run = make_run((make_input(tmp_path / "lines.txt"),))
    command = Command("tool", [*py("pass"), "{input}", "--out={workdir}/x"])
    result = command.process(run, {})
    assert result["argv"][3:] == ["lines.txt", "--out=./x"]
    # End users see the program and their own arguments only; the whole argv is staff-only.
    assert result["command"] == [Path(command.program).name, "lines.txt"]
    assert command.staff_only == ("argv",)


def test_inputs_expand_to_one_argument_each(make_run: Any, tmp_path: Path) -> None:
    run = make_run((make_input(tmp_path / "a b.txt"), make_input(tmp_path / "c.txt")))
    script = "import json, sys; print(json.dumps(sys.argv[1:]))"
    command = Command("args", [*py(script), "{inputs}"], stdout_json=True)
    assert command.process(run, {})["data"] == [str(tmp_path / "a b.txt"), str(tmp_path / "c.txt")]


def test_parameters_and_workdir_are_filled_in(make_run: Any, tmp_path: Path) -> None:
    values = ["{params.name}", "{params.count}", "{params.ratio}", "{params.strict}"]
    argv = [*py("pass"), *values, "--out={workdir}/x.csv", "{{literal}}"]
    result = Command("tool", argv).process(make_run(strict=False), {})
    assert result["command"][1:] == ["report", "3", "0.5", "false"]
    assert result["argv"][3:] == [
        "report",
        "3",
        "0.5",
        "false",
        "--out=./x.csv",
        "{literal}",
    ]


def test_a_parameter_starting_with_a_dash_is_refused(make_run: Any) -> None:
    command = Command("tool", [*py("pass"), "{params.name}"])
    with pytest.raises(TaskError) as caught:
        command.process(make_run(name="-rf"), {})
    assert caught.value.message == (
        "parameter `name` value '-rf' starts with '-' and would be read as an option"
    )


def test_a_list_parameter_is_refused(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("tool", [*py("pass"), "{params.tags}"]).process(make_run(), {})
    assert caught.value.message == "parameter `tags` is a list; a command argument takes one value"


def test_a_parameter_without_a_value_is_refused(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("tool", [*py("pass"), "{params.missing}"]).process(make_run(), {})
    assert caught.value.message == "parameter `missing` has no value; a command argument needs one"


# Running


def test_a_missing_program_is_reported(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("tool", ["gristmill-no-such-tool"]).process(make_run(), {})
    assert caught.value.message == "command `gristmill-no-such-tool` was not found on this server"


def test_the_environment_is_scrubbed(make_run: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GRISTMILL_TEST_SECRET", "hunter2")
    script = "import json, os; print(json.dumps(dict(os.environ)))"
    command = Command("env", py(script), env={"MODE": "fast"}, stdout_json=True)
    run = make_run()
    env = command.process(run, {})["data"]
    workdir = str(run.workdir.absolute())
    assert env == {
        "PATH": os.environ["PATH"],
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "HOME": workdir,
        "TMPDIR": f"{workdir}/tmp",
        "MODE": "fast",
    }


def test_the_tool_runs_in_the_workdir(make_run: Any) -> None:
    run = make_run()
    result = Command("pwd", py("import os; print(os.getcwd())")).process(run, {})
    assert result["stdout_tail"] == str(run.workdir.absolute())


def test_output_lines_reach_the_log_as_they_come(
    make_run: Any, reporter: RecordingReporter
) -> None:
    script = "import sys; print('out one'); print('err one', file=sys.stderr); print('out two')"
    Command("talk", py(script)).process(make_run(), {})
    assert reporter.stream("stdout") == ["out one", "out two"]
    assert reporter.stream("stderr") == ["err one"]


def test_the_result_keeps_the_last_fifty_lines(make_run: Any) -> None:
    script = "import sys\nfor i in range(60): print(i); print('e', i, file=sys.stderr)"
    result = Command("count", py(script)).process(make_run(), {})
    assert result["stdout_tail"] == "\n".join(str(i) for i in range(10, 60))
    assert result["stderr_tail"].splitlines()[0] == "e 10"
    assert result["exit_code"] == 0
    assert result["warnings"] == []


def test_an_ok_code_other_than_zero_succeeds(make_run: Any) -> None:
    result = Command("diff", py("raise SystemExit(1)"), ok_codes=[0, 1]).process(make_run(), {})
    assert (result["exit_code"], result["warnings"]) == (1, [])


def test_a_warn_code_succeeds_with_a_warning(make_run: Any) -> None:
    result = Command("lint", py("raise SystemExit(3)"), warn_codes=[3]).process(make_run(), {})
    assert result["exit_code"] == 3
    assert result["warnings"] == [f"`{PY}` exited with code 3"]


def test_another_code_fails_with_the_stderr_tail(make_run: Any) -> None:
    script = "import sys; print('bad things', file=sys.stderr); sys.exit(2)"
    with pytest.raises(TaskError) as caught:
        Command("tool", py(script)).process(make_run(), {})
    assert caught.value.message == f"command `{PY}` failed with exit code 2\nbad things"


def test_false_fails_without_a_tail(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("tool", ["false"]).process(make_run(), {})
    assert caught.value.message == "command `false` failed with exit code 1"


def test_a_tool_killed_by_a_signal_is_reported(make_run: Any) -> None:
    script = "import os, signal; os.kill(os.getpid(), signal.SIGKILL)"
    with pytest.raises(TaskError) as caught:
        Command("tool", py(script)).process(make_run(), {})
    assert caught.value.message == f"command `{PY}` was killed by signal SIGKILL"


GRANDCHILD = (
    "import subprocess, sys, time\n"
    "child = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(30)'])\n"
    "open('child.pid', 'w').write(str(child.pid))\n"
    "print('ready', flush=True)\n"
    "time.sleep(30)\n"
)


def test_a_timeout_kills_the_whole_process_group(make_run: Any) -> None:
    run = make_run()
    started = time.monotonic()
    with pytest.raises(StepTimeoutError) as caught:
        Command("slow", py(GRANDCHILD), timeout=0.5).process(run, {})
    assert time.monotonic() - started < 5
    assert caught.value.message == "step `slow` ran past its time limit of 0.5 s"
    child = int((run.workdir / "child.pid").read_text())
    assert wait_until(lambda: process_gone(child))


def test_cancellation_stops_the_tool(make_run: Any, reporter: RecordingReporter) -> None:
    reporter.cancel_on = "ready"
    run = make_run()
    with pytest.raises(CancelledError) as caught:
        Command("slow", py(GRANDCHILD)).process(run, {})
    assert caught.value.message == "the run was cancelled"
    child = int((run.workdir / "child.pid").read_text())
    assert wait_until(lambda: process_gone(child))


def test_a_tool_ignoring_sigterm_is_killed(
    make_run: Any, reporter: RecordingReporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gristmill.authoring.commands._TERM_GRACE_SECONDS", 0.2)
    reporter.cancel_on = "ready"
    script = "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    script += "print('ready', flush=True); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(CancelledError):
        Command("stubborn", py(script)).process(make_run(), {})
    assert time.monotonic() - started < 5


def test_children_left_running_after_the_tool_exits_are_killed(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gristmill.authoring.commands._EXIT_GRACE_SECONDS", 0.2)
    script = GRANDCHILD.replace("time.sleep(30)\n", "")
    run = make_run()
    result = Command("leaver", py(script)).process(run, {})
    assert result["exit_code"] == 0
    child = int((run.workdir / "child.pid").read_text())
    assert wait_until(lambda: process_gone(child))


def test_too_much_json_output_stops_the_tool(
    make_run: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("gristmill.authoring.commands._JSON_LIMIT", 1000)
    script = "import time; print('x' * 5000, flush=True); time.sleep(30)"
    started = time.monotonic()
    with pytest.raises(TaskError) as caught:
        Command("chatty", py(script), stdout_json=True).process(make_run(), {})
    assert time.monotonic() - started < 5
    assert caught.value.message == (
        f"command `{PY}` printed more than 16 MiB, too much for stdout_json"
    )


# Results


def test_matching_files_are_registered_as_outputs(make_run: Any) -> None:
    script = "import os\nos.mkdir('sub')\nfor n in ['b.csv', 'a.csv', 'sub/c.csv', 'd.txt']:\n"
    script += "    open(n, 'w').close()"
    run = make_run()
    result = Command("write", py(script), outputs=["*.csv", "sub/*"]).process(run, {})
    assert result["outputs"] == ["a.csv", "b.csv", "sub/c.csv"]
    assert [output.name for output in run.outputs] == ["a.csv", "b.csv", "sub/c.csv"]


def test_an_output_linking_outside_is_refused_without_the_server_path(make_run: Any) -> None:
    script = "import os\nos.mkdir('sub')\nos.symlink('/etc/hostname', 'sub/leak.txt')"
    with pytest.raises(TaskError) as caught:
        Command("link", py(script), outputs=["sub/*.txt"]).process(make_run(), {})
    assert caught.value.message == "output 'sub/leak.txt' is outside the step's work directory"


def test_a_missing_output_fails_the_step(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("tool", ["true"], outputs=["*.csv"]).process(make_run(), {})
    assert caught.value.message == (
        "step 'tool': command `true` produced no file matching '*.csv'; it produced no files"
    )


def test_a_missing_output_names_the_files_the_step_did_produce(make_run: Any) -> None:
    script = "import os\nos.mkdir('out')\nfor name in ('out/a.tsv', 'log.txt'): open(name, 'w')"
    with pytest.raises(TaskError) as caught:
        Command("export", py(script), outputs=["out/*.csv"]).process(make_run(), {})
    assert caught.value.message == (
        f"step 'export': command `{PY}` produced no file matching 'out/*.csv'; "
        "it produced: log.txt, out/a.tsv"
    )


def test_stdout_json_is_parsed_into_data(make_run: Any) -> None:
    script = "import json; print(json.dumps({'rows': 3, 'ok': True}))"
    result = Command("stats", py(script), stdout_json=True).process(make_run(), {})
    assert result["data"] == {"rows": 3, "ok": True}


def test_stdout_that_is_not_json_fails_the_step(make_run: Any) -> None:
    with pytest.raises(TaskError) as caught:
        Command("stats", py("print('hello')"), stdout_json=True).process(make_run(), {})
    assert caught.value.message == (
        f"the output of command `{PY}` is not valid JSON: Expecting value: line 1 column 1 (char 0)"
    )
