"""Operations against a live ``gristmill serve``: Prometheus metrics at ``/metrics`` and
structured JSON logs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import service_absent
from tests.e2e.conftest import E2E_PIPELINES, TEMPLATES, Server, kill_server, start_server
from tests.integration.conftest import (
    PIPELINES,
    _drop_postgres,
    wait_until,
)

QUEUE_PIPELINES = str(Path(PIPELINES).with_name("queue_pipelines.py"))
OPS_PIPELINES = str(Path(__file__).with_name("ops_pipelines.py"))
TOKEN = "a-scrapers-secret-token"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A live server with a metrics token and JSON logs."""
    database_url = None
    if request.param == "postgres":
        database_url, reason = TEMPLATES.postgres_database()
        if not database_url:
            service_absent(reason)
    data_dir = tmp_path_factory.mktemp(f"ops-{request.param}")
    settings = {
        "GRISTMILL_METRICS_TOKEN": TOKEN,
        "GRISTMILL_LOG_FORMAT": "json",
        "GRISTMILL_QUEUES": "default",
    }
    pipelines = (PIPELINES, E2E_PIPELINES, QUEUE_PIPELINES, OPS_PIPELINES)
    running = start_server(
        data_dir, database_url, pipelines=pipelines, settings=settings, migrated=True
    )
    yield running
    kill_server(running.process)
    if database_url:
        _drop_postgres(database_url)


def scrape(server: Server) -> dict[str, Any]:
    """The metrics, parsed with prometheus_client's own parser, by family name."""
    with server.client() as client:
        response = client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family: Any, name: str | None = None) -> dict[tuple[tuple[str, str], ...], float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples
        if name is None or sample.name == name
    }


def finished_run(server: Server, pipeline: str) -> str:
    with server.client() as client:
        response = client.post(f"/api/v1/pipelines/{pipeline}/runs", json={})
        assert response.status_code == 201, response.text
        run_id: str = response.json()["id"]
        wait_until(
            lambda: client.get(f"/api/v1/runs/{run_id}").json()["state"] in ("succeeded", "failed"),
            message=f"run {run_id} of {pipeline} did not end",
        )
    return run_id


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer not-the-token"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["nothing", "a-wrong-token", "another-scheme"],
)
def test_metrics_are_not_found_without_the_token(server: Server, headers: dict[str, str]) -> None:
    with server.client() as client:
        response = client.get("/metrics", headers=headers)
    assert response.status_code == 404
    assert "gristmill_runs" not in response.text


def test_metrics_count_runs_queues_workers_and_step_durations(server: Server) -> None:
    before = samples(scrape(server)["gristmill_runs"])
    finished_run(server, "trivial")
    metrics = scrape(server)

    runs = samples(metrics["gristmill_runs"])
    assert set(runs) == {
        (("state", s),)
        for s in ("queued", "running", "succeeded", "failed", "cancelled", "expired")
    }
    assert runs[(("state", "succeeded"),)] == before[(("state", "succeeded"),)] + 1

    up = samples(metrics["gristmill_supervisor_up"])
    assert 1.0 in up.values()  # serve's own supervisor, beating
    assert all(
        age >= 0 for age in samples(metrics["gristmill_supervisor_beat_age_seconds"]).values()
    )
    assert samples(metrics["gristmill_workers"])[()] >= 1

    durations = metrics["gristmill_step_duration_seconds"]
    assert durations.type == "histogram"
    buckets = samples(durations, "gristmill_step_duration_seconds_bucket")
    assert buckets[(("le", "+Inf"),)] >= 1
    counts = [buckets[k] for k in sorted(buckets, key=lambda k: float(k[0][1]))]
    assert counts == sorted(counts)  # cumulative
    assert samples(durations, "gristmill_step_duration_seconds_count") == {
        (): buckets[(("le", "+Inf"),)]
    }

    assert set(samples(metrics["gristmill_expired_runs"])) == {
        (("files", "removed"),),
        (("files", "pending"),),
    }
    assert "gristmill_queue_depth" in metrics
    assert "gristmill_queue_oldest_age_seconds" in metrics


def test_a_deleted_run_counts_as_expired(server: Server) -> None:
    removed = (("files", "removed"),)
    before = samples(scrape(server)["gristmill_expired_runs"])[removed]
    run_id = finished_run(server, "trivial")
    with server.client() as client:
        assert client.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert samples(scrape(server)["gristmill_expired_runs"])[removed] == before + 1


def test_a_queue_nobody_takes_from_shows_its_depth_and_age(server: Server) -> None:
    """This server's workers take from the default queue only: a run of ``heavy`` waits."""
    with server.client() as client:
        for _ in range(2):
            response = client.post("/api/v1/pipelines/heavy/runs", json={})
            assert response.status_code == 201, response.text
    metrics = scrape(server)
    assert samples(metrics["gristmill_queue_depth"])[(("queue", "heavy"),)] == 2
    assert samples(metrics["gristmill_queue_oldest_age_seconds"])[(("queue", "heavy"),)] >= 0
    assert samples(metrics["gristmill_runs"])[(("state", "queued"),)] >= 2


def test_logs_are_one_json_object_per_line_with_the_run_and_step(server: Server) -> None:
    run_id = finished_run(server, "internal")  # its step fails with an unexpected error
    lines = [line for line in server.log.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]  # every line: one JSON object
    for record in records:
        assert {"time", "level", "logger", "message"} <= set(record), record
    (failure,) = [r for r in records if r.get("run_id") == run_id and r["level"] == "ERROR"]
    assert failure["logger"] == "gristmill.engine"
    assert failure["step"] == "broken"
    assert "ZeroDivisionError" in failure["exception"]
    assert failure["message"].startswith(f"step broken of run {run_id} failed (reference ")
    with httpx.Client(base_url=server.url) as client:
        assert client.get("/healthz").status_code == 200


def test_a_gristmill_worker_logs_json_too(server: Server, tmp_path: Path) -> None:
    """``gristmill worker`` on the server's database takes the queue serve leaves alone."""
    log = tmp_path / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "gristmill", "worker", "--workers", "1", "--queue", "elsewhere"],
            env=server.env(GRISTMILL_LOG_FORMAT="json", GRISTMILL_PIPELINES=OPS_PIPELINES),
            stdout=subprocess.DEVNULL,
            stderr=output,
            start_new_session=True,
        )
    try:
        run_id = finished_run(server, "broken-elsewhere")
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(30) == 0
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait()
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    (failure,) = [r for r in records if r.get("run_id") == run_id and r["level"] == "ERROR"]
    assert (failure["logger"], failure["step"]) == ("gristmill.engine", "broken")
    assert "ZeroDivisionError" in failure["exception"]
