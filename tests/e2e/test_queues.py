"""Queues and priorities end to end: a live ``gristmill serve`` without workers takes the
runs, a real ``gristmill worker --queue heavy`` runs only that queue's, and takes a pipeline of
higher priority first."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx

from gristmill.states import RunState
from tests.e2e.conftest import E2E_PIPELINES, start_server, stop_server
from tests.integration.conftest import PIPELINES, wait_until

QUEUES = str(Path(__file__).parents[1] / "integration" / "queue_pipelines.py")
SPECS = (PIPELINES, E2E_PIPELINES, QUEUES)


def submit(client: httpx.Client, pipeline: str, value: int) -> str:
    response = client.post(f"/api/v1/pipelines/{pipeline}/runs", json={"params": {"value": value}})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def run_of(client: httpx.Client, run_id: str) -> dict[str, Any]:
    response = client.get(f"/api/v1/runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_a_worker_on_one_queue_takes_its_runs_highest_priority_first(tmp_path: Path) -> None:
    server = start_server(tmp_path, workers=0, pipelines=SPECS)
    worker: subprocess.Popen[bytes] | None = None
    try:
        with server.client() as client:
            elsewhere = submit(client, "trivial", 1)  # the default queue: nobody takes it
            heavy = [submit(client, "heavy", n) for n in range(3)]
            urgent = submit(client, "urgent", 9)  # last submitted, highest priority
            assert run_of(client, heavy[0])["state"] == RunState.QUEUED
            log = (tmp_path / "worker.log").open("wb")
            with log:
                worker = subprocess.Popen(
                    [
                        sys.executable,
                        "-m",
                        "gristmill",
                        "worker",
                        "--workers",
                        "1",
                        "--queue",
                        "heavy",
                        *(option for spec in SPECS for option in ("--pipelines", spec)),
                    ],
                    env=server.env(),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            runs = [urgent, *heavy]
            ended = wait_until(
                lambda: all(run_of(client, r)["state"] == RunState.SUCCEEDED for r in runs),
                timeout=60,
                message="the heavy queue's runs to succeed",
            )
            assert ended
            started = {r: run_of(client, r)["started_at"] for r in runs}
            # One worker process takes one unit at a time: the urgent run first, then the
            # others oldest first (claim order, read from when each started).
            assert sorted(runs, key=lambda r: started[r]) == [urgent, *heavy]
            assert run_of(client, elsewhere)["state"] == RunState.QUEUED
    finally:
        if worker is not None:
            with contextlib.suppress(ProcessLookupError):
                worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(worker.pid, signal.SIGKILL)
                worker.wait()
        stop_server(server.process)
