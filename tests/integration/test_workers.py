"""Worker processes of each executor (local, Celery on Redis and on RabbitMQ) on each database:
queued runs are picked up and finished."""

from __future__ import annotations

from pathlib import Path

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import Entry, get_run, submit, submit_many, wait, wait_many
from tests.integration.conftest import Workers, wait_until


def test_workers_finish_every_queued_run(service: Service, any_workers: Workers) -> None:
    run_ids = [submit("trivial", params={"value": i}, service=service) for i in range(20)]
    any_workers.start(2)
    results = [wait(run_id, timeout=30, service=service) for run_id in run_ids]
    assert [r.state for r in results] == [RunState.SUCCEEDED] * 20
    assert [r.result("one")["value"] for r in results] == list(range(20))


def test_a_ten_step_pipeline_runs_every_step_in_order(
    service: Service, any_workers: Workers
) -> None:
    any_workers.start(1)
    status = wait(submit("ten", service=service), timeout=30, service=service)
    assert [s.result for s in status.steps] == list(range(10))


def test_cancelling_a_running_run_stops_its_step(
    service: Service, any_workers: Workers, control: Path
) -> None:
    any_workers.start(1)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    wait_until(lambda: (control / "started-1").exists(), message="the step to start")
    assert service.store.request_cancel(run_id)
    status = wait(run_id, timeout=20, service=service)
    assert status.state == RunState.CANCELLED
    assert status.error == "the run was cancelled"
    assert [s.state.value for s in status.steps] == ["succeeded", "cancelled", "cancelled"]


def test_live_status_shows_the_current_step(
    service: Service, any_workers: Workers, control: Path
) -> None:
    any_workers.start(1)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    wait_until(lambda: (control / "started-1").exists(), message="the step to start")
    running = wait_until(
        lambda: (s := get_run(run_id, service=service)).steps[1].state.value == "running" and s,
        message="the step to show as running",
    )
    assert running.state == RunState.RUNNING
    assert running.run.current_step == "hold"
    (control / "release").touch()
    assert wait(run_id, timeout=20, service=service).state == RunState.SUCCEEDED


def test_a_burst_of_runs_all_succeed_and_no_worker_dies(
    service: Service, any_workers: Workers
) -> None:
    any_workers.start(2)
    run_ids = [submit("trivial", params={"value": i}, service=service) for i in range(500)]
    states = {wait(run_id, timeout=60, service=service).state for run_id in run_ids}
    assert states == {RunState.SUCCEEDED}
    log = any_workers.log.read_text()
    assert "exited with code" not in log and "Traceback" not in log, log


def test_quick_runs_claimed_with_a_long_one_end_without_waiting_for_it(
    service: Service, workers: Workers, control: Path
) -> None:
    # One worker process, six quick runs, then one that holds its worker until released, then
    # two more. A worker on SQLite claims quick units eight at a time and keeps their ends to
    # write them together. Neither the kept ends nor the units claimed ahead may wait for the
    # long unit: the ends are written within a watchdog tick, and the units claimed with it go
    # back to the queue once it has run a second.
    entries = [Entry(params={"value": n}) for n in range(6)]
    quick = submit_many("trivial", entries, service=service)
    held = submit("holding", params={"control": str(control)}, service=service)
    after = submit_many("trivial", entries[:2], service=service)
    workers.start(1)
    wait_until(lambda: (control / "started-1").exists(), message="the long unit to start")

    ended = wait_until(
        lambda: {get_run(r, service=service).state for r in quick} == {RunState.SUCCEEDED},
        message="the quick runs before the long one to end",
    )
    assert ended
    assert get_run(held, service=service).state == RunState.RUNNING

    def handed_back(run_id: str) -> bool:
        lines = service.store.read_log(run_id)
        return get_run(run_id, service=service).state == RunState.QUEUED and any(
            "busy with a long unit" in line.text for line in lines
        )

    if service.store.groups_ends:  # claimed with the long unit: handed back, not held
        wait_until(lambda: all(handed_back(r) for r in after), message="the hand-back")
    (control / "release").touch()
    statuses = wait_many([*quick, held, *after], timeout=30, service=service)
    assert {s.state for s in statuses} == {RunState.SUCCEEDED}
    assert [s.result("one")["value"] for s in statuses[:6]] == list(range(6))
