"""The Celery executor's faults, for real: real ``gristmill worker`` processes on the Celery
executor, on a private Redis and on a private RabbitMQ virtual host, with PostgreSQL.

A message is only a doorbell: a killed worker process, a message delivered twice, a purged
queue, a broker that stops and comes back, a worker stopped past its lease: each time the run
ends correctly, each step's result is stored once, and nothing is published twice.

(The engine's contract tests, in test_workers.py and test_cancel.py, run on the Celery executor
too, on SQLite and PostgreSQL.)
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit, wait
from gristmill.authoring.registry import Registry
from gristmill.store.records import QueuedUnit
from tests.integration import test_faults
from tests.integration.conftest import (
    ServiceDatabaseRouter,
    Workers,
    _service,
    use_executor,
    wait_until,
)
from tests.integration.test_faults import _log, _pid, _step_rows

if TYPE_CHECKING:
    from django.test import Client


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def service(
    request: pytest.FixtureRequest, databases: dict[str, Any], registry: Registry
) -> Iterator[Service]:
    """A service on PostgreSQL only (the database of a deployment on several machines)."""
    svc = _service(databases, registry, request.param)
    ServiceDatabaseRouter.alias = svc.store.alias  # type: ignore[attr-defined]
    try:
        yield svc
    finally:
        ServiceDatabaseRouter.alias = "default"
        svc.store.close()


@pytest.fixture(params=["celery-redis", "celery-rabbitmq"])
def celery(request: pytest.FixtureRequest, workers: Workers) -> Workers:
    """Celery-executor workers on each broker."""
    use_executor(request, workers, request.param)
    return workers


def _unit_of(service: Service, run_id: str) -> QueuedUnit:
    from gristmill.server.models import WorkUnit

    alias = service.store.alias  # type: ignore[attr-defined]
    unit = WorkUnit.objects.using(alias).filter(run_id=run_id).order_by("-id").first()
    assert unit is not None
    return QueuedUnit(unit.id, unit.queue)


def test_a_celery_worker_process_killed_mid_step_has_its_unit_redone_once(
    service: Service, celery: Workers, control: Path
) -> None:
    celery.start(2)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    os.kill(_pid(control, 1), signal.SIGKILL)
    status = wait(run_id, timeout=60, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    assert status.result("hold")["attempt"] == 2
    assert status.result("after") == {"saw_attempt": 2}
    assert _step_rows(service, run_id) == 3
    assert "attempt 1 lost: worker lost (its lease expired); retrying" in _log(service, run_id)
    assert not (control / "finished-1").exists()
    assert not (control / "started-3").exists()
    (output,) = status.outputs
    assert service.storage.path(output.path).read_text() == "attempt 2"


def test_a_celery_worker_stopped_past_its_lease_cannot_publish_when_it_resumes(
    service: Service, celery: Workers, control: Path
) -> None:
    test_faults.test_a_stopped_worker_past_its_lease_cannot_publish_when_it_resumes(
        service, celery, control
    )


def test_a_message_delivered_twice_is_dropped(
    service: Service, celery: Workers, control: Path
) -> None:
    celery.start(2)
    run_id = submit("holding", params={"control": str(control)}, service=service)
    _pid(control, 1)
    bell = service.store.bell
    assert bell is not None
    unit = _unit_of(service, run_id)
    bell([unit, unit])  # while the unit is running
    (control / "release").touch()
    status = wait(run_id, timeout=30, service=service)
    bell([unit])  # once it is done
    assert status.state == RunState.SUCCEEDED
    assert status.result("hold")["attempt"] == 1
    # Later work still flows (the duplicates were acknowledged, not stuck) and the run stays
    # as it ended.
    after = wait(submit("trivial", service=service), timeout=30, service=service)
    assert after.state == RunState.SUCCEEDED
    again = get_run(run_id, service=service)
    assert again.run.attempt == 1 and again.state == RunState.SUCCEEDED
    assert _step_rows(service, run_id) == 3
    assert not (control / "started-2").exists()


def test_a_purged_queue_only_delays_the_runs_the_reconciler_rings_again(
    service: Service, celery: Workers
) -> None:
    run_ids = [submit("trivial", params={"value": i}, service=service) for i in range(20)]
    assert celery.broker is not None
    celery.broker.flush()  # every message is lost
    celery.start(2)
    results = [wait(run_id, timeout=60, service=service) for run_id in run_ids]
    assert [r.state for r in results] == [RunState.SUCCEEDED] * 20
    assert [r.result("one")["value"] for r in results] == list(range(20))
    assert all(r.run.attempt == 1 for r in results)


def test_a_broker_that_stops_mid_run_and_comes_back_only_delays_work(
    service: Service, celery: Workers, control: Path
) -> None:
    celery.start(2)
    broker = celery.broker
    assert broker is not None
    held = submit("holding", params={"control": str(control)}, service=service)
    _pid(control, 1)
    broker.stop()
    try:
        # Submissions are accepted while the broker is down: the database keeps them.
        run_ids = [submit("trivial", params={"value": i}, service=service) for i in range(10)]
        assert {get_run(r, service=service).state for r in run_ids} == {RunState.QUEUED}
        (control / "release").touch()
        assert wait(held, timeout=30, service=service).state == RunState.SUCCEEDED
    finally:
        broker.start()
    results = [wait(run_id, timeout=90, service=service) for run_id in run_ids]
    assert [r.state for r in results] == [RunState.SUCCEEDED] * 10
    assert all(r.run.attempt == 1 for r in results)
    status = get_run(held, service=service)
    assert status.result("hold")["attempt"] == 1
    assert _step_rows(service, held) == 3


def test_the_health_check_reports_the_broker(
    service: Service, celery: Workers, web: Client
) -> None:
    broker = celery.broker
    assert broker is not None
    response = web.get("/healthz")
    assert response.status_code == 200, response.json()
    assert response.json()["broker"] == "ok"
    broker.stop()
    try:
        response = web.get("/healthz")
        assert response.status_code == 503
        body = response.json()
        assert body["broker"] == "unavailable"
        assert body["problems"][0].startswith("the broker is unavailable")
    finally:
        broker.start()
    wait_until(lambda: web.get("/healthz").status_code == 200, message="the broker to be back")


def test_several_workers_share_the_runs_and_each_runs_once(
    service: Service, celery: Workers
) -> None:
    celery.start(1)
    celery.start(1)
    run_ids = [submit("ten", service=service) for _ in range(20)]
    results = [wait(run_id, timeout=60, service=service) for run_id in run_ids]
    assert {r.state for r in results} == {RunState.SUCCEEDED}
    assert all(r.run.attempt == 1 for r in results)
    assert {_step_rows(service, r) for r in run_ids} == {10}


def test_a_worker_on_one_queue_takes_only_that_queues_runs(
    service: Service, celery: Workers
) -> None:
    from gristmill.authoring.registry import Registry
    from tests.integration.conftest import PIPELINES

    extra = str(Path(__file__).with_name("queue_pipelines.py"))
    registry = Registry(specs=[PIPELINES, extra])
    both = Service(service.settings, service.store, registry, service.storage)
    pipelines = f"{PIPELINES},{extra}"
    celery.start(1, GRISTMILL_QUEUES="heavy", GRISTMILL_PIPELINES=pipelines)
    elsewhere = submit("trivial", service=both)  # the default queue: no worker takes it yet
    heavy = submit("heavy", params={"value": 7}, service=both)
    assert wait(heavy, timeout=30, service=both).result("one")["value"] == 7
    assert get_run(elsewhere, service=both).state == RunState.QUEUED
    assert "gristmill.heavy" in celery.log.read_text()
    celery.start(1, GRISTMILL_PIPELINES=pipelines)
    assert wait(elsewhere, timeout=30, service=both).state == RunState.SUCCEEDED
