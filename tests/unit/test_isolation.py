"""``network=False`` where the machine cannot make a network namespace: the step fails with a
message naming the option and why, never runs with network; a wrong value is a definition
error."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from gristmill import Command, DefinitionError, RunContext, TaskError, task
from gristmill.authoring import isolation
from gristmill.authoring.fingerprints import normalised_source


@pytest.fixture
def no_namespaces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        isolation, "isolation_mode", lambda: (0, "the worker is not root (a test says so)")
    )


def _run(tmp_path: Path) -> RunContext:
    return RunContext(
        run_id="run-1",
        pipeline="demo",
        step="check",
        inputs=(),
        params=None,
        workdir=tmp_path,
        upstream={},
    )


MESSAGE = (
    "step `check` is set to run without network access (network=False), but this server "
    "cannot cut a step off the network: the worker is not root (a test says so). Run the "
    "workers as root or where user namespaces are allowed, or set network=True on the step"
)


def test_a_python_step_without_namespaces_fails_naming_the_option(
    no_namespaces: None, tmp_path: Path
) -> None:
    ran: list[Any] = []
    with pytest.raises(TaskError) as raised:
        isolation.call_without_network(_run(tmp_path), lambda: ran.append(1), str)
    assert raised.value.message == MESSAGE
    assert ran == []


def test_a_command_without_namespaces_fails_naming_the_option(
    no_namespaces: None, tmp_path: Path
) -> None:
    command = Command("check", ["true"], network=False)
    with pytest.raises(TaskError) as raised:
        command.process(_run(tmp_path), {})
    assert raised.value.message == MESSAGE


def test_network_must_be_a_boolean() -> None:
    with pytest.raises(DefinitionError, match="network must be True or False, not 'no'"):

        @task(network="no")  # type: ignore[arg-type]
        def check(run: RunContext) -> None:
            pass

        check.check_definition()


def test_network_does_not_count_in_a_class_tasks_code() -> None:
    from gristmill import Task

    class Online(Task):
        def process(self, run: RunContext, upstream: Any) -> int:
            return 1

    class Offline(Task):
        network = False

        def process(self, run: RunContext, upstream: Any) -> int:
            return 1

    assert normalised_source(Online).replace("Online", "X") == normalised_source(Offline).replace(
        "Offline", "X"
    )
