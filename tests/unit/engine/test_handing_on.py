"""Steps that hand files on, fingerprints that see those files and named packages, and server
paths kept out of what end users see: the runner and planner on the memory store."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gristmill import Command, DefinitionError, Inputs, Pipeline, RunContext, TaskError, task
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring import tasks
from gristmill.authoring.tasks import Task, installed_version
from gristmill.engine.planner import plan
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.unit.engine.conftest import MakeService

ONE_FILE = Inputs(kinds=["file", "text"])
# A tool that writes its input upper-cased to upper.txt and says which file it read.
UPPER = "import sys; t = open(sys.argv[1]).read(); open('upper.txt', 'w').write(t.upper()); print('read', sys.argv[1])"  # noqa: E501


def chain(suffix: str = "") -> Pipeline:
    upper = Command("upper", [sys.executable, "-c", UPPER + suffix, "{input}"], outputs=["*.txt"])
    count = Command("count", ["wc", "-c", "{outputs.upper}"])

    @task(needs=["upper"])
    def shout(run: RunContext) -> dict[str, Any]:
        (made,) = run.upstream_files("upper")
        with made.open("r") as text:
            return {"text": text.read(), "name": made.name, "sha256": made.sha256}

    return Pipeline("chain", [upper, count, shout], inputs=ONE_FILE)


def submit_text(service: Service, text: str) -> str:
    path = Path(service.settings.data_dir).parent / "words.txt"
    path.write_text(text, encoding="utf-8")
    run_id = submit("chain", [path], service=service)
    run_inline(service, run_id)
    return run_id


def test_a_step_reads_the_output_files_of_an_earlier_step(make_service: MakeService) -> None:
    service = make_service(chain())
    status = get_run(submit_text(service, "loud words"), service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    shout = status.result("shout")
    assert shout["text"] == "LOUD WORDS"
    assert shout["name"] == "upper.txt"
    (output,) = [o for o in status.outputs if o.step == "upper"]
    assert shout["sha256"] == output.sha256
    # The command's argv named the file; users see it as STEP/NAME, never the server path.
    count = status.result("count")
    assert count["command"] == ["wc", "upper/upper.txt"]
    assert count["argv"] == ["wc", "-c", "upper/upper.txt"]
    assert count["stdout_tail"].split() == ["10", "upper/upper.txt"]


def test_no_server_path_reaches_the_results_or_the_log(make_service: MakeService) -> None:
    service = make_service(chain())
    run_id = submit_text(service, "quiet")
    status = get_run(run_id, service=service)
    data_dir = str(Path(service.settings.data_dir).resolve())
    log = [line.text for line in service.store.read_log(run_id)]
    assert "read words.txt" in log
    assert "5 upper/upper.txt" in log
    assert data_dir not in repr([step.result for step in status.steps]) + repr(log)
    assert status.result("upper")["command"] == [Path(sys.executable).name, "words.txt"]


def test_a_changed_upstream_output_makes_the_reader_stale_naming_it(
    make_service: MakeService,
) -> None:
    first = make_service(chain())
    run_id = submit_text(first, "abc")
    # The same pipeline whose first step writes something else: its output changes.
    second = Service(
        first.settings,
        first.store,
        make_service(chain("; open('upper.txt', 'a').write('!')")).registry,
        first.storage,
    )
    assert first.store.requeue(run_id, reason="stale results")
    assert run_inline(second, run_id) == RunState.SUCCEEDED
    assert get_run(run_id, service=second).result("shout")["text"] == "ABC!"
    log = [line.text for line in second.store.read_log(run_id)]
    # Both steps that read the file say which file changed.
    reasons = [line for line in log if "output `upper.txt` of step `upper` changed" in line]
    assert len(reasons) == 2, log


def test_a_placeholder_naming_an_unknown_or_later_step_is_a_definition_error() -> None:
    later = Command("later", ["cat", "{outputs.after}"])

    @task
    def after(run: RunContext) -> None:
        return None

    with pytest.raises(DefinitionError, match=r"argv names \{outputs.after\}, and 'after', which "):
        Pipeline("wrong-order", [later, after])
    nowhere = Command("nowhere", ["cat", "{outputs.ghost.x.csv}"])
    with pytest.raises(DefinitionError, match="'ghost', which is not a step of this pipeline"):
        Pipeline("unknown", [nowhere])


def test_an_output_placeholder_must_fill_a_whole_argument() -> None:
    with pytest.raises(DefinitionError, match=r"puts \{outputs.a\} inside other text"):
        Command("c", ["cat", "--in={outputs.a}"])


def test_a_step_with_several_outputs_needs_the_name(make_service: MakeService) -> None:
    two = Command("two", ["sh", "-c", "echo a > a.txt; echo b > b.txt"], outputs=["*.txt"])
    ambiguous = Command("pick", ["cat", "{outputs.two}"])
    named = Command("named", ["cat", "{outputs.two.b.txt}"])
    service = make_service(Pipeline("chain", [two, named, ambiguous], inputs=Inputs(min_count=0)))
    run_id = submit("chain", service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.result("named")["stdout_tail"] == "b"
    assert status.error == (
        "{outputs.two}: step `two` has 2 output files (a.txt, b.txt); name one as "
        "{outputs.two.NAME}"
    )


def test_a_step_may_read_the_files_of_the_steps_it_reads_only(make_service: MakeService) -> None:
    @task
    def first(run: RunContext) -> None:
        return None

    @task(needs=[])
    def second(run: RunContext) -> None:
        run.upstream_files("first")

    service = make_service(Pipeline("chain", [first, second], inputs=Inputs(min_count=0)))
    run_id = submit("chain", service=service)
    run_inline(service, run_id)
    assert get_run(run_id, service=service).error == (
        "step `second` cannot read the files of `first`: it is not an earlier step this step "
        "reads (it reads: none)"
    )


def test_a_task_error_naming_a_server_path_is_shown_with_the_input_name(
    make_service: MakeService,
) -> None:
    @task
    def refuse(run: RunContext) -> None:
        raise TaskError(f"cannot read {run.input.path}")

    service = make_service(Pipeline("chain", [refuse], inputs=ONE_FILE))
    run_id = submit_text(service, "x")
    assert get_run(run_id, service=service).error == "cannot read words.txt"


# -- packages ----------------------------------------------------------------------------


class Checked(Task):
    packages = ("pytest",)

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> str:
        return "checked"


def test_a_named_packages_version_is_in_the_fingerprint_and_its_upgrade_is_explained(
    make_service: MakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    service = make_service(Pipeline("chain", [Checked()], inputs=Inputs(min_count=0)))
    run_id = submit("chain", service=service)
    run_inline(service, run_id)
    (step,) = service.store.get_steps(run_id).values()
    assert step.fingerprint is not None
    now = installed_version("pytest")
    assert step.fingerprint["packages"] == {"pytest": now}
    # As if pytest had been upgraded on the server since.
    monkeypatch.setattr(tasks, "installed_version", lambda name: "99.0")
    status = get_run(run_id, service=service)
    steps = service.store.get_steps(run_id)
    (checked,) = plan(service.registry.get("chain"), status.run, steps, service.storage)
    assert checked.reasons == [f"pytest {now} → 99.0"]
    assert service.store.requeue(run_id, reason="stale results")
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    assert f"recomputing: pytest {now} → 99.0" in [t.text for t in service.store.read_log(run_id)]


def test_an_uninstalled_package_is_a_definition_error() -> None:
    with pytest.raises(DefinitionError, match="'no-such-dist-xyz', which is not installed"):

        @task(packages=("no-such-dist-xyz",))
        def check(run: RunContext) -> None:
            return None

        Pipeline("p", [check])


def test_packages_must_be_a_list_of_names() -> None:
    def check(run: RunContext) -> None:
        return None

    with pytest.raises(DefinitionError, match="packages must be a list of names"):
        Pipeline("p", [task(packages="jsonschema")(check)])


TEMPLATED = """
from gristmill import Task


class Validate(Task):
    title = "Validate"
    template = "{template}"
    packages = ("pytest",)

    def process(self, run, upstream):
        return {{"valid": True}}

    def context(self, run, result):
        return {{"shown as": "{template}", **result}}
"""


def _templated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, template: str) -> Pipeline:
    import importlib.util

    # The same module, edited: only its presentation changes.
    path = tmp_path / "validate_steps.py"
    path.write_text(TEMPLATED.format(template=template), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("validate_steps", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "validate_steps", module)
    spec.loader.exec_module(module)
    Task._code_cache.clear()
    return Pipeline("chain", [module.Validate], inputs=Inputs(min_count=0))


def test_a_changed_template_leaves_the_result_current_a_package_upgrade_does_not(
    make_service: MakeService, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = make_service(_templated(tmp_path, monkeypatch, "plain.html"))
    run_id = submit("chain", service=first)
    run_inline(first, run_id)
    restyled = _templated(tmp_path, monkeypatch, "fancy/results.html")
    steps = first.store.get_steps(run_id)
    run = get_run(run_id, service=first).run
    (step,) = plan(restyled, run, steps, first.storage)
    assert step.reasons == []
    monkeypatch.setattr(tasks, "installed_version", lambda name: "99.0")
    (step,) = plan(restyled, run, steps, first.storage)
    assert step.reasons == [f"pytest {installed_version('pytest')} → 99.0"]
