"""Faults, for real: killed, stopped and terminated workers lose nothing and publish once."""

from __future__ import annotations

import os
import signal
from pathlib import Path

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit, wait
from tests.integration.conftest import Workers, wait_until


def _pid(control: Path, attempt: int) -> int:
    marker = control / f"started-{attempt}"
    wait_until(lambda: marker.exists() and marker.read_text(), message=f"attempt {attempt}")
    return int(marker.read_text())


def _log(service: Service, run_id: str) -> list[str]:
    return [line.text for line in service.store.read_log(run_id)]


def _step_rows(service: Service, run_id: str) -> int:
    from gristmill.server.models import Step

    alias = service.store.alias  # type: ignore[attr-defined]
    return Step.objects.using(alias).filter(run_id=run_id).count()


def test_a_worker_killed_mid_step_is_replaced_and_the_run_completes_on_attempt_2(
    service: Service, workers: Workers, control: Path
) -> None:
    workers.start(2)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    os.kill(_pid(control, 1), signal.SIGKILL)
    status = wait(run_id, timeout=30, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("hold")["attempt"] == 2
    assert status.result("after") == {"saw_attempt": 2}
    assert _step_rows(service, run_id) == 3
    assert "attempt 1 lost: worker lost (killed by signal SIGKILL); retrying" in _log(
        service, run_id
    )
    (output,) = status.outputs
    assert service.storage.path(output.path).read_text() == "attempt 2"


def test_a_step_that_kills_its_worker_every_time_fails_after_the_attempt_limit(
    service: Service, workers: Workers
) -> None:
    workers.start(2)
    doomed = submit("crashing", service=service)
    others = [submit("trivial", params={"value": i}, service=service) for i in range(5)]
    status = wait(doomed, timeout=60, service=service)
    assert status.state == RunState.FAILED
    assert status.error == (
        "worker lost (killed by signal SIGKILL) on attempt 3; gave up after 3 lost attempts"
    )
    assert [wait(r, timeout=30, service=service).state for r in others] == [RunState.SUCCEEDED] * 5


def test_a_stopped_worker_past_its_lease_cannot_publish_when_it_resumes(
    service: Service, workers: Workers, control: Path
) -> None:
    workers.start(2)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    stopped = _pid(control, 1)
    os.kill(stopped, signal.SIGSTOP)
    try:
        status = wait(run_id, timeout=30, service=service)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert status.state == RunState.SUCCEEDED
    assert status.result("hold")["attempt"] == 2
    (control / "release").touch()  # let the late attempt 1 finish its step and try to save
    wait_until(
        lambda: "was taken over; its work is discarded" in workers.log.read_text(),
        message="the late attempt to be fenced out",
    )
    after = get_run(run_id, service=service)
    assert after.result("hold")["attempt"] == 2
    assert _step_rows(service, run_id) == 3
    (output,) = after.outputs
    assert "/a2/" in output.path


def test_sigterm_mid_step_releases_the_run_and_a_new_worker_completes_it(
    service: Service, workers: Workers, control: Path
) -> None:
    first = workers.start(1)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    _pid(control, 1)
    assert workers.stop(first, signal.SIGTERM) == 0
    assert get_run(run_id, service=service).state == RunState.QUEUED
    assert "attempt 1 released by a stopping worker" in _log(service, run_id)
    workers.start(1)
    status = wait(run_id, timeout=30, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("hold")["attempt"] == 2
    assert _step_rows(service, run_id) == 3


def test_sigterm_lets_a_step_that_ends_within_the_grace_period_finish(
    service: Service, workers: Workers, control: Path
) -> None:
    first = workers.start(1)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    _pid(control, 1)
    first.send_signal(signal.SIGTERM)
    (control / "release").touch()
    assert first.wait(20) == 0
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("hold")["attempt"] == 1


def test_a_step_that_ignores_its_time_limit_is_killed_and_the_worker_replaced(
    service: Service, workers: Workers, control: Path
) -> None:
    workers.start(1)
    run_id = submit("stubborn", params={"control": str(control)}, service=service)
    status = wait(run_id, timeout=30, service=service)
    assert status.state == RunState.FAILED
    assert status.error == (
        "step `stubborn_slowpoke` ran past its time limit and did not "
        "stop; its processes were killed"
    )
    after = wait(submit("trivial", service=service), timeout=30, service=service)
    assert after.state == RunState.SUCCEEDED
