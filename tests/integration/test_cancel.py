"""A cancel is honoured, on each database, with live workers: once the API has answered 202 the
run ends ``cancelled``; a run that had already ended answers 409 with its final state.

Each moment is tried many times: 50 times with local workers on each database, 10 times with
Celery workers on each broker and database. The steps tell the test where they are through
marker files (``control/<run>-<step>``); the test cancels once a step's marker exists.

These are contract tests of the executors: ``live`` starts workers of each executor (local, and
Celery on Redis and on RabbitMQ).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run, submit, wait
from gristmill.states import RunState, StepState
from gristmill.store.records import CANCELLED_MESSAGE, KILLED_MESSAGE, Failure, Report, StepOutcome
from tests.integration.conftest import EXECUTORS, Workers, use_executor
from tests.integration.test_web import run_page

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient

TRIES = 50
"""How many times each moment is tried with local workers, on SQLite and on PostgreSQL."""
CELERY_TRIES = 10
"""How many times with Celery workers: the moments are the engine's, not the executor's, and a
Celery variant tries each of them on each broker and database."""


class Live:
    """Starts ``count`` live workers (``live(count)``) of the test's executor; :attr:`tries`
    is how many runs a test of a moment submits."""

    def __init__(self, workers: Workers, executor: str):
        self.workers = workers
        self.tries = TRIES if executor == "local" else CELERY_TRIES

    def __call__(self, count: int) -> object:
        return self.workers.start(count)


@pytest.fixture(params=EXECUTORS)
def live(request: pytest.FixtureRequest, workers: Workers) -> Live:
    """Starts live workers of each executor (``request.param``) on the test's database; they
    are stopped after the test."""
    use_executor(request, workers, request.param)
    return Live(workers, request.param)


def marked(control: Path, run_id: str, step: str) -> Callable[[], bool]:
    return lambda: (control / f"{run_id}-{step}").exists()


def until(condition: Callable[[], Any], timeout: float = 20, message: str = "") -> None:
    """Like ``wait_until``, but looking every millisecond: these tests cancel at moments a
    few milliseconds long."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message}")
        time.sleep(0.001)


def cancel(client: TestClient, run_id: str) -> int:
    """Cancel through the API; the status code (202 or 409, nothing else)."""
    response = client.post(f"/runs/{run_id}/cancel")
    assert response.status_code in (202, 409), response.json()
    if response.status_code == 409:
        state = get_run(run_id).state
        assert response.json()["error"]["message"] == (
            f"the run has already ended ({state}); there is nothing to cancel"
        )
    return response.status_code


def settled(service: Service, answers: dict[str, int]) -> list[RunStatus]:
    """Every run ended as its answer promised: cancelled after a 202, and after a 409 ended
    before the request (never running again)."""
    ended = []
    for run_id, code in answers.items():
        status = wait(run_id, timeout=30, service=service)
        expected = {RunState.CANCELLED} if code == 202 else {RunState.SUCCEEDED}
        assert status.state in expected, (run_id, code, status.state, status.error)
        ended.append(status)
    return ended


def submit_all(
    service: Service, live: Live, pipeline: str, control: Path, **params: Any
) -> list[str]:
    return [
        submit(pipeline, params={"control": str(control), **params}, service=service)
        for _ in range(live.tries)
    ]


def test_queued_runs_are_cancelled_at_once(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(1)
    blocker = submit("cancel-progress", params={"control": str(control)}, service=service)
    until(marked(control, blocker, "counting"), message="the worker to be busy")
    queued = submit_all(service, live, "cancel-last", control)
    for run_id in queued:
        response = client.post(f"/runs/{run_id}/cancel")
        assert (response.status_code, response.json()) == (202, {"state": "cancelled"})
    assert client.post(f"/runs/{blocker}/cancel").status_code == 202
    assert wait(blocker, timeout=20, service=service).state == RunState.CANCELLED
    for status in settled(service, dict.fromkeys(queued, 202)):
        assert status.error == "cancelled before it started"
        assert [s.state for s in status.steps] == [StepState.CANCELLED]
    assert not list(control.glob("*-last"))  # none of them ever started


def test_a_step_that_reports_nothing_ends_and_the_next_never_starts(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(2)
    runs = submit_all(service, live, "cancel-silent", control, seconds=0.4)
    answers = {}
    for run_id in runs:
        until(marked(control, run_id, "silent"), message=f"run {run_id} to start")
        answers[run_id] = cancel(client, run_id)
    assert set(answers.values()) == {202}
    for status in settled(service, answers):
        assert status.error == "the run was cancelled"
        assert [s.state for s in status.steps] == [StepState.SUCCEEDED, StepState.CANCELLED]
    assert not list(control.glob("*-last"))


def test_a_step_that_reports_progress_stops_when_cancelled(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(2)
    runs = submit_all(service, live, "cancel-progress", control)
    answers = {}
    for run_id in runs:
        until(marked(control, run_id, "counting"), message=f"run {run_id} to report progress")
        answers[run_id] = cancel(client, run_id)
    assert set(answers.values()) == {202}
    for status in settled(service, answers):
        assert status.run.interrupted_step == "counting"
        assert [s.state for s in status.steps] == [StepState.CANCELLED, StepState.CANCELLED]
    assert not list(control.glob("*-last"))


def test_a_cancel_between_steps_stops_the_run_before_its_next_step(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(2)
    answers = {}
    for run_id in submit_all(service, live, "cancel-steps", control):
        until(lambda r=run_id: get_run(r).state != RunState.QUEUED, message="the run to start")
        answers[run_id] = cancel(client, run_id)
    for status in settled(service, answers):
        if status.state == RunState.CANCELLED:
            # The steps that ran form a prefix: none ran after the cancel stopped one.
            states = [s.state for s in status.steps]
            ran = len(list(itertools.takewhile(lambda s: s == StepState.SUCCEEDED, states)))
            assert set(states[ran:]) <= {StepState.CANCELLED}, states


def test_a_cancel_during_the_write_that_ends_the_run_is_decided_by_the_database(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(2)
    answers = {}
    for run_id in submit_all(service, live, "cancel-last", control, size=200_000):
        until(marked(control, run_id, "last"), message=f"run {run_id} to reach its last step")
        answers[run_id] = cancel(client, run_id)
    settled(service, answers)


def test_a_step_that_never_stops_is_killed_after_the_grace_and_the_run_is_cancelled(
    service: Service, site: None, client: TestClient, live: Live, control: Path
) -> None:
    live(1)
    run_id = submit(
        "cancel-silent", params={"control": str(control), "seconds": 60}, service=service
    )
    until(marked(control, run_id, "silent"), message="the step to start")
    assert cancel(client, run_id) == 202
    status = wait(run_id, timeout=30, service=service)
    assert (status.state, status.error) == (RunState.CANCELLED, KILLED_MESSAGE)
    assert status.run.interrupted_step == "silent"
    assert not (control / f"{run_id}-last").exists()


# -- the store's end-of-run write ---------------------------------------------------------


def _outcome(name: str = "one") -> StepOutcome:
    now = time.time()
    return StepOutcome(name, 0, StepState.SUCCEEDED, json.dumps({"ok": True}), {}, now, now)


def test_the_last_write_ends_the_run_cancelled_if_a_cancel_came_first(service: Service) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id, by="alice")
    assert service.store.save_step(claim, _outcome(), Report(), lease=30, final=RunState.SUCCEEDED)
    run = get_run(run_id, service=service).run
    assert (run.state, run.error_message) == (RunState.CANCELLED, "the run was cancelled")
    assert (run.cancel_requested, run.cancel_requested_by) == (True, "alice")
    assert run.cancel_requested_at is not None and run.interrupted_step is None


def test_a_failure_after_a_cancel_ends_the_run_cancelled_naming_the_step(
    service: Service,
) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id)
    failure = Failure("internal error, reference abc", ref="abc", traceback="...", step="one")
    assert service.store.finish(claim, RunState.FAILED, Report(), failure)
    run = get_run(run_id, service=service).run
    assert (run.state, run.error_message, run.error_ref) == (
        RunState.CANCELLED,
        "the run was cancelled",
        None,
    )
    assert (run.interrupted_step, run.cancel_requested_by) == ("one", None)


def test_a_cancel_after_the_last_write_is_refused(service: Service) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.save_step(claim, _outcome(), Report(), lease=30, final=RunState.SUCCEEDED)
    assert not service.store.request_cancel(run_id)
    run = get_run(run_id, service=service).run
    assert (run.state, run.cancel_requested, run.cancel_requested_at) == (
        RunState.SUCCEEDED,
        False,
        None,
    )


def test_running_a_cancelled_run_again_forgets_the_cancel(service: Service) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id, by="alice")
    assert service.store.finish(claim, RunState.CANCELLED, Report(), Failure("x", step="one"))
    assert service.store.requeue(run_id, reason="rerun requested")
    run = get_run(run_id, service=service).run
    assert run.state == RunState.QUEUED
    assert (run.cancel_requested, run.cancel_requested_at, run.cancel_requested_by) == (
        False,
        None,
        None,
    )
    assert run.interrupted_step is None


# -- what the page of a cancelled run says --------------------------------------------------


def cancelled_text(web: Client, run_id: str) -> str:
    (text,) = run_page(web, run_id).texts("#run-error")
    return text  # type: ignore[no-any-return]


def when(service: Service, run_id: str) -> str:
    at = get_run(run_id, service=service).run.cancel_requested_at
    assert at is not None
    return f"{at:%-d %B %Y, %H:%M:%S} UTC"


def test_the_page_says_once_who_cancelled_when_and_which_step_was_interrupted(
    service: Service, web: Client
) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id, by="alice")
    assert service.store.finish(
        claim, RunState.CANCELLED, Report(), Failure(CANCELLED_MESSAGE, step="one")
    )
    assert cancelled_text(web, run_id) == (
        f"This run was cancelled by alice on {when(service, run_id)}, "
        "while its step “one” was running."
    )


def test_the_page_says_when_a_step_had_to_be_killed(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id)
    assert service.store.finish(
        claim, RunState.CANCELLED, Report(), Failure(KILLED_MESSAGE, step="one")
    )
    assert cancelled_text(web, run_id) == (
        f"This run was cancelled by someone who was not signed in on {when(service, run_id)}, "
        "while its step “one” was running. Its step did not stop when asked, so its processes "
        "were killed."
    )


def test_the_page_names_the_step_that_never_started(service: Service, web: Client) -> None:
    run_id = submit("holding", params={"control": "unused"}, service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.save_step(claim, _outcome(), Report(), lease=30)
    assert service.store.request_cancel(run_id, by="bob")
    assert service.store.finish(claim, RunState.CANCELLED, Report(), Failure(CANCELLED_MESSAGE))
    assert cancelled_text(web, run_id) == (
        f"This run was cancelled by bob on {when(service, run_id)}, before its step “hold” started."
    )


def test_the_page_says_so_when_the_cancel_came_as_the_last_step_finished(
    service: Service, web: Client
) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id, by="alice")
    assert service.store.save_step(claim, _outcome(), Report(), lease=30, final=RunState.SUCCEEDED)
    assert cancelled_text(web, run_id) == (
        f"This run was cancelled by alice on {when(service, run_id)}, as its last step finished."
    )


def test_a_run_cancelled_from_the_command_line_says_so(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    reason = "cancelled from the command line (Ctrl-C)"
    assert service.store.finish(claim, RunState.CANCELLED, Report(), Failure(reason, step="one"))
    assert cancelled_text(web, run_id) == (
        "This run was cancelled, while its step “one” was running. "
        "Cancelled from the command line (Ctrl-C)."
    )


def test_the_api_says_who_cancelled_when_and_which_step_was_interrupted(
    service: Service, client: TestClient
) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    assert service.store.request_cancel(run_id, by="alice")
    assert service.store.finish(claim, RunState.FAILED, Report(), Failure("boom", step="one"))
    body = client.get(f"/runs/{run_id}").json()
    at = get_run(run_id, service=service).run.cancel_requested_at
    assert at is not None
    assert {key: body[key] for key in ("state", "cancel_requested", "cancel_requested_by")} == {
        "state": "cancelled",
        "cancel_requested": True,
        "cancel_requested_by": "alice",
    }
    # The API gives times to the millisecond.
    assert datetime.fromisoformat(body["cancel_requested_at"]) == at.replace(
        microsecond=at.microsecond // 1000 * 1000
    )
    assert (body["interrupted_step"], body["error"]["message"]) == ("one", "the run was cancelled")


def test_a_run_asked_to_stop_says_it_is_cancelling_and_offers_no_cancel(
    service: Service, web: Client
) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("test", queues=None, lease=30, run_id=run_id)
    try:
        assert service.store.request_cancel(run_id, by="alice")
        html = run_page(web, run_id)
        assert html.texts("#run-stage") == ["Cancelling: waiting for the current step to stop."]
        assert html.select("#cancel") == []
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())
