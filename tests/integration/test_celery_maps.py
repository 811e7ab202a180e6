"""Faults, for real, on a map run across two Celery-executor workers (each its own ``gristmill
worker``, one process each), on a private Redis and on a private RabbitMQ virtual host, with
PostgreSQL: a worker killed mid-batch, the broker stopped and started again mid-run, every batch
message delivered twice, the broker's queue purged mid-run, a worker stopped past its lease and
resumed after another finished its batch. Each time the run ends correctly, every item is counted
exactly once and every finding is stored exactly once (checked against the input and the
findings table).

The held batch (item 1234's, the third) waits on its first delivery until the test releases it,
so each fault strikes while the run is mid-map.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit, wait
from gristmill.authoring.inputs import LocalFile
from gristmill.store.records import QueuedUnit
from tests.integration import test_celery
from tests.integration.conftest import Workers, use_executor, wait_until
from tests.integration.test_maps import ITEMS, check_counted_once, dataset, expected

service = test_celery.service
"""On PostgreSQL only (the database of a deployment on several machines)."""

HOLD = 1234
BATCHES = 40


@pytest.fixture(params=["celery-redis", "celery-rabbitmq"])
def celery(request: pytest.FixtureRequest, workers: Workers) -> Workers:
    """Celery-executor workers on each broker."""
    use_executor(request, workers, request.param)
    return workers


def _submit_held(service: Service, tmp_path: Path, control: Path) -> str:
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    return submit("mapping", [data], {"control": str(control), "hold": HOLD}, service=service)


def _held_pid(control: Path) -> int:
    held = control / "held"
    wait_until(lambda: held.exists() and held.read_text(), timeout=60, message="a held batch")
    return int(held.read_text())


def _batches_done(service: Service, run_id: str) -> int:
    from gristmill.server.models import Batch

    alias = service.store.alias  # type: ignore[attr-defined]
    return Batch.objects.using(alias).filter(run_id=run_id, state="done").count()


def _units(service: Service, run_id: str) -> list[QueuedUnit]:
    from gristmill.server.models import WorkUnit

    alias = service.store.alias  # type: ignore[attr-defined]
    rows = WorkUnit.objects.using(alias).filter(run_id=run_id).order_by("id")
    return [QueuedUnit(unit.id, unit.queue) for unit in rows]


def _check_table(service: Service, run_id: str) -> None:
    """The findings table holds each expected finding once, and nothing else."""
    from gristmill.server.models import Finding

    alias = service.store.alias  # type: ignore[attr-defined]
    rows = Finding.objects.using(alias).filter(run_id=run_id, step="check")
    items = sorted(rows.values_list("item", flat=True))
    assert items == sorted(expected())
    pairs = list(rows.values_list("item", "kind"))
    assert len(set(pairs)) == len(pairs)  # no (item, kind) twice


def _ended_once(service: Service, run_id: str, timeout: float = 120) -> dict[str, Any]:
    status = wait(run_id, timeout=timeout, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    tally: dict[str, Any] = status.result("tally")
    check_counted_once(service, run_id, tally)
    assert status.result("check")["items"] == ITEMS
    assert tally["distinct"] == len(set(expected()))
    _check_table(service, run_id)
    return tally


def _signal_worker(process: subprocess.Popen[bytes], sig: int) -> None:
    """Send ``sig`` to a whole ``gristmill worker``: its own process and every descendant (the
    Celery worker's processes lead process groups of their own)."""
    for pid in [process.pid, *_descendants(process.pid)]:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def test_a_celery_worker_killed_mid_batch_has_its_batch_redone_by_the_other(
    service: Service, celery: Workers, tmp_path: Path, control: Path
) -> None:
    first = celery.start(1)
    run_id = _submit_held(service, tmp_path, control)
    assert _held_pid(control) in _descendants(first.pid)
    celery.start(1)
    _signal_worker(first, signal.SIGKILL)  # the whole worker, its Celery parent and its process
    first.wait(20)
    _ended_once(service, run_id)
    log = [line.text for line in service.store.read_log(run_id)]
    assert any("lost: worker lost (its lease expired)" in line for line in log)


def test_a_broker_stopped_mid_map_and_started_again_only_delays_the_run(
    service: Service, celery: Workers, tmp_path: Path, control: Path
) -> None:
    broker = celery.broker
    assert broker is not None
    celery.start(1)
    celery.start(1)
    run_id = _submit_held(service, tmp_path, control)
    _held_pid(control)
    wait_until(
        lambda: _batches_done(service, run_id) == BATCHES - 1,
        timeout=60,
        message="every batch but the held one",
    )
    broker.stop()
    try:
        # The held batch ends while the broker is away: the walk unit it queues (the reduce)
        # cannot be announced; the database keeps it.
        (control / "release").touch()
        wait_until(
            lambda: _batches_done(service, run_id) == BATCHES,
            timeout=60,
            message="the held batch to be saved",
        )
    finally:
        broker.start()
    _ended_once(service, run_id)


def test_every_batch_message_delivered_twice_is_dropped_and_nothing_is_counted_twice(
    service: Service, celery: Workers, tmp_path: Path, control: Path
) -> None:
    celery.start(1)
    celery.start(1)
    run_id = _submit_held(service, tmp_path, control)
    _held_pid(control)
    bell = service.store.bell
    assert bell is not None
    units = _units(service, run_id)
    assert len(units) >= BATCHES
    bell(units + units)  # queued, running and done batch units, each twice
    (control / "release").touch()
    _ended_once(service, run_id)
    bell(_units(service, run_id))  # and once more when the run has ended
    # Later work still flows (the duplicates were acknowledged, not stuck), and the run stays
    # as it ended.
    after = wait(submit("trivial", service=service), timeout=30, service=service)
    assert after.state == RunState.SUCCEEDED
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    check_counted_once(service, run_id, get_run(run_id, service=service).result("tally"))
    _check_table(service, run_id)


def test_a_queue_purged_mid_map_is_recovered_by_the_reconciler(
    service: Service, celery: Workers, tmp_path: Path, control: Path
) -> None:
    broker = celery.broker
    assert broker is not None
    celery.start(1)  # the only worker: it holds the third batch, the rest wait on the broker
    run_id = _submit_held(service, tmp_path, control)
    _held_pid(control)
    broker.purge()  # every waiting batch's message is lost
    celery.start(1)
    # Only the reconciler's new messages can bring the second worker the other batches.
    wait_until(
        lambda: _batches_done(service, run_id) == BATCHES - 1,
        timeout=60,
        message="the reconciler to ring for the purged batches",
    )
    (control / "release").touch()
    _ended_once(service, run_id)


def test_a_worker_stopped_past_its_lease_is_fenced_out_when_it_resumes(
    service: Service, celery: Workers, tmp_path: Path, control: Path
) -> None:
    first = celery.start(1)
    first_log = celery.log
    run_id = _submit_held(service, tmp_path, control)
    stopped = _held_pid(control)
    assert stopped in _descendants(first.pid)
    celery.start(1)
    # The process running the batch is stopped (its worker's main process, which may hold the
    # reconciler's lock at any moment, is not: a stopped holder would keep every reconciler
    # waiting until it resumes).
    os.kill(stopped, signal.SIGSTOP)
    try:
        # Its lease runs out; the other worker redoes the held batch (the hold is past) and
        # the rest, and the run ends.
        _ended_once(service, run_id)
    finally:
        os.kill(stopped, signal.SIGCONT)
    (control / "release").touch()  # the late batch finishes and tries to save its work
    wait_until(
        lambda: "was taken over; its work is discarded" in first_log.read_text(),
        timeout=60,
        message="the late batch to be fenced out",
    )
    check_counted_once(service, run_id, get_run(run_id, service=service).result("tally"))
    _check_table(service, run_id)


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(FileNotFoundError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            with contextlib.suppress(FileNotFoundError):
                for child in (task / "children").read_text().split():
                    found += [int(child), *_descendants(int(child))]
    return found
