"""docs/deploy.md, "Deploy on several machines", followed on one machine: PostgreSQL, a broker
(a private Redis, and a private RabbitMQ virtual host), two ``gristmill worker`` processes on the
Celery executor and ``gristmill serve``; the health check lists both workers and the broker, and
runs submitted over HTTP finish."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.client import Client
from tests.conftest import service_absent
from tests.e2e.conftest import E2E_PIPELINES, _clean_env, kill_server, start_server
from tests.integration.brokers import (  # noqa: F401 - fixtures
    broker_for,
    private_redis,
    private_vhost,
)
from tests.integration.conftest import (
    PIPELINES,
    _drop_postgres,
    _postgres_database,
    cold_stop,
    wait_until,
)


def _healthy(url: str, workers: int) -> dict[str, Any] | None:
    response = httpx.get(f"{url}healthz", timeout=10)
    body: dict[str, Any] = response.json()
    alive = [s for s in body.get("supervisors", []) if s["alive"]]
    return body if response.status_code == 200 and len(alive) == workers else None


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["redis", "rabbitmq"])
def test_two_celery_workers_and_serve_as_the_deploy_page_says(
    kind: str, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    broker = broker_for(kind, request)
    database_url, reason = _postgres_database()
    if not database_url:
        service_absent(reason)
    assert database_url is not None
    request.addfinalizer(lambda: _drop_postgres(database_url))
    settings = {
        "GRISTMILL_EXECUTOR": "celery",
        "GRISTMILL_BROKER_URL": broker.url,
        "GRISTMILL_RECONCILE_AFTER": "1",
    }
    # `gristmill serve` (which runs `gristmill migrate` first here, as step 4 says).
    server = start_server(tmp_path, database_url, workers=0, settings=settings)
    request.addfinalizer(lambda: kill_server(server.process))
    env = _clean_env(
        **settings,
        GRISTMILL_LEASE_SECONDS="5",
        GRISTMILL_DRAIN_SECONDS="5",
        GRISTMILL_KILL_GRACE="1",
        GRISTMILL_DATABASE_URL=database_url,
        GRISTMILL_DATA_DIR=str(tmp_path),
        GRISTMILL_PIPELINES=f"{PIPELINES},{E2E_PIPELINES}",
        # The banners are read from the log below: unbuffered, they are there once printed.
        PYTHONUNBUFFERED="1",
    )
    workers = []
    for number in range(2):
        log = (tmp_path / f"worker-{number}.log").open("wb")
        process = subprocess.Popen(
            [sys.executable, "-m", "gristmill", "worker", "--workers", "1"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        workers.append(process)
        # Once the test is over, at once: a Celery worker's warm shutdown takes seconds.
        request.addfinalizer(lambda process=process: cold_stop(process))
    body = wait_until(lambda: _healthy(server.url, 2), timeout=60, message="two live workers")
    assert body["broker"] == "ok" and body["database"] == "ok" and body["workers"] == "none"
    assert [s["workers"] for s in body["supervisors"]] == [1, 1]
    with Client(server.url) as client:
        run_ids = [client.submit("trivial", params={"value": i})["id"] for i in range(10)]
        finished = [client.wait(run_id, timeout=60) for run_id in run_ids]
    assert [run["state"] for run in finished] == ["succeeded"] * 10
    for process in workers:
        assert process.poll() is None
    banner = (tmp_path / "worker-0.log").read_text()
    assert "1 Celery worker(s) on postgres://" in banner
    assert "gristmill.default" in banner
