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


class _Recording:
    def __init__(self) -> None:
        self.events: list[tuple[Any, ...]] = []
        self.cancelled = False

    def log(self, text: str, stream: str) -> None:
        self.events.append(("log", text, stream))

    def stage(self, name: str | None) -> None:
        self.events.append(("stage", name))

    def progress(self, done: int, total: int | None) -> None:
        self.events.append(("progress", done, total))

    def is_cancelled(self) -> bool:
        return self.cancelled


def _namespaces_or_skip() -> None:
    flags, reason = isolation.isolation_mode()
    if not flags:
        pytest.skip(f"this machine cannot make network namespaces: {reason}")


def test_what_a_step_reports_in_its_own_process_reaches_the_reporter(tmp_path: Path) -> None:
    _namespaces_or_skip()
    import json
    import os
    import socket

    reporter = _Recording()
    run = RunContext(
        run_id="run-1",
        pipeline="demo",
        step="check",
        inputs=(),
        params=None,
        workdir=tmp_path,
        upstream={},
        reporter=reporter,
    )

    def work() -> dict[str, Any]:
        with run.stage("reading"):
            run.progress(1, 3)
            for _ in range(5):
                run.log("same line")
        (tmp_path / "made.txt").write_text("made")
        run.output("made.txt")
        interfaces = [name for _, name in socket.if_nameindex()]
        return {"pid": os.getpid(), "interfaces": interfaces}

    result = isolation.call_without_network(run, work, json.dumps)
    assert result["pid"] != os.getpid()
    assert result["interfaces"] == ["lo"]  # a namespace of its own, with only loopback
    assert reporter.events == [
        ("stage", "reading"),
        ("progress", 1, 3),
        ("log", "same line", "log"),
        ("log", "same line", "log"),
        ("log", "same line", "log"),
        ("stage", None),
        ("log", "… 2 more like this: same line", "log"),
    ]
    (made,) = run.outputs
    assert (made.name, made.size, made.path) == ("made.txt", 4, tmp_path / "made.txt")


def test_a_cancelled_step_in_its_own_process_is_killed(tmp_path: Path) -> None:
    _namespaces_or_skip()
    import time

    from gristmill import CancelledError

    reporter = _Recording()
    reporter.cancelled = True  # asked to stop before it even started
    run = RunContext(
        run_id="run-1",
        pipeline="demo",
        step="check",
        inputs=(),
        params=None,
        workdir=tmp_path,
        upstream={},
        reporter=reporter,
    )

    def ignores_cancel() -> None:
        while True:
            time.sleep(0.05)

    with pytest.raises(CancelledError):
        isolation.call_without_network(run, ignores_cancel, str)
