"""Outages only delay: a database that goes away and comes back costs time, never a run, and
the health check says 503 while something the server needs is gone.

The database is a private PostgreSQL cluster on a free port (the shared server must never be
stopped), stopped and started again under a live ``gristmill serve``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import service_absent
from tests.e2e.conftest import Server, finished, start_server, stop_server
from tests.integration.conftest import PIPELINES, wait_until
from tests.private_postgres import PrivateCluster, postgres_bindir, private_cluster

LEASE = 5.0
"""The lease ``start_server`` gives the workers (``GRISTMILL_LEASE_SECONDS``)."""


@pytest.fixture
def cluster() -> Iterator[PrivateCluster]:
    bindir = postgres_bindir()
    if bindir is None:
        service_absent("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    try:
        import psycopg  # noqa: F401
    except ImportError:
        service_absent("psycopg is not installed (pip install 'gristmill[postgres]')")
    assert bindir is not None
    with private_cluster(bindir) as running:
        yield running


def submit(client: httpx.Client, pipeline: str, params: dict[str, Any]) -> str:
    answer = client.post(f"/api/v1/pipelines/{pipeline}/runs", json={"params": params})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def health(client: httpx.Client) -> tuple[int, dict[str, Any]]:
    answer = client.get("/healthz")
    return answer.status_code, answer.json()


def live_supervisors(client: httpx.Client) -> list[dict[str, Any]]:
    """The supervisors the health check shows alive (once their heartbeat is recent)."""
    return [s for s in health(client)[1].get("supervisors", []) if s["alive"]]


def log_lines(client: httpx.Client, run_id: str) -> list[str]:
    return [line["text"] for line in client.get(f"/api/v1/runs/{run_id}/log").json()["lines"]]


@pytest.mark.parametrize("outage", ["short", "past-the-lease"])
def test_a_database_restart_mid_step_costs_time_never_the_run(
    cluster: PrivateCluster, tmp_path: Path, outage: str
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    server = start_server(tmp_path, cluster.url, workers=2)
    try:
        with server.client() as client:
            held = submit(client, "holding", {"control": str(control)})
            wait_until(lambda: (control / "started-1").exists(), message="the step to start")
            cluster.stop()

            wait_until(lambda: health(client)[0] == 503, message="the health check to say 503")
            status, body = health(client)
            assert (body["status"], body["database"], body["workers"]) == (
                "unavailable",
                "unavailable",
                "ok",
            )
            (problem,) = body["problems"]
            assert problem.startswith("the database is unavailable: ")
            refused = client.post("/api/v1/pipelines/trivial/runs", json={"params": {}})
            assert refused.status_code == 503
            assert refused.json()["error"]["message"] == (
                "the database is unavailable; try again in a moment"
            )

            # The step ends while the database is down: its result cannot be saved yet.
            (control / "release").touch()
            wait_until(lambda: (control / "finished-1").exists(), message="the step to end")
            if outage == "past-the-lease":
                # The outage itself, longer than a lease: not a wait for anything.
                time.sleep(LEASE * 1.5)
            cluster.start()

            wait_until(lambda: health(client)[0] == 200, message="the health check to recover")
            status = finished(client, held, timeout=60)
            assert status["state"] == "succeeded", status
            # Saved once the database was back, not redone by another attempt.
            attempts = [step["attempt"] for step in status["steps"]]
            assert attempts == [1, 1, 1], log_lines(client, held)
            assert [line for line in log_lines(client, held) if "attempt" in line] == []

            after = submit(client, "trivial", {"value": 7})
            assert finished(client, after)["state"] == "succeeded"
            status, body = health(client)
            assert (status, body["status"], body["workers"]) == (200, "ok", "ok")
            (supervisor,) = wait_until(lambda: live_supervisors(client), message="a heartbeat")
            assert supervisor["workers"] == 2
    finally:
        stop_server(server.process)
    log = server.log.read_text()
    # Once per process (the supervisor and two workers) and per outage, not once per try.
    assert 1 <= log.count("database unavailable: ") <= 3, log
    assert "database back after " in log
    assert "internal error" not in log and "Traceback" not in log, log


def test_a_gristmill_worker_rides_out_a_database_restart(
    cluster: PrivateCluster, tmp_path: Path
) -> None:
    server = start_server(tmp_path, cluster.url, workers=0)
    worker_log = tmp_path / "worker.log"
    with worker_log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "gristmill", "worker", "--workers", "1"],
            env=server.env(GRISTMILL_LEASE_SECONDS=str(LEASE), GRISTMILL_PIPELINES=PIPELINES),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        with server.client() as client:
            assert finished(client, submit(client, "trivial", {}))["state"] == "succeeded"
            cluster.stop()
            wait_until(
                lambda: "database unavailable: " in worker_log.read_text(),
                message="the worker to notice the outage",
            )
            cluster.start()
            wait_until(lambda: health(client)[0] == 200, message="the health check to recover")
            run_id = submit(client, "trivial", {"value": 2})
            assert finished(client, run_id)["state"] == "succeeded"
            assert worker.poll() is None
            assert health(client)[1]["workers"] == "none"  # not in this process: elsewhere
            (supervisor,) = wait_until(lambda: live_supervisors(client), message="a heartbeat")
            assert supervisor["workers"] == 1
            worker.send_signal(signal.SIGTERM)
            assert worker.wait(30) == 0
            assert health(client)[1]["supervisors"] == []  # it signed off
    finally:
        stop_server(server.process)
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    text = worker_log.read_text()
    assert "database back after " in text
    assert "Traceback" not in text, text


def _children(pid: int) -> list[int]:
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return [int(child) for child in children]


def test_the_health_check_says_503_once_the_workers_supervisor_has_died(tmp_path: Path) -> None:
    server: Server = start_server(tmp_path, workers=1)
    try:
        with server.client() as client:
            assert health(client)[0] == 200
            (supervisor,) = _children(server.process.pid)
            os.kill(supervisor, signal.SIGKILL)
            wait_until(lambda: health(client)[0] == 503, message="the health check to say 503")
            status, body = health(client)
            del body["supervisors"]  # it stops beating, and is shown dead after a lease
            assert (status, body) == (
                503,
                {
                    "status": "unavailable",
                    "database": "ok",
                    "workers": "stopped",
                    "problems": ["the workers' supervisor has stopped: queued runs will not start"],
                },
            )
            (dead,) = wait_until(
                lambda: [s for s in health(client)[1]["supervisors"] if not s["alive"]],
                message="the silent supervisor to be shown dead",
            )
            assert dead["name"].endswith(f"/{supervisor}")
            assert dead["seconds_since_beat"] >= LEASE
    finally:
        stop_server(server.process)
