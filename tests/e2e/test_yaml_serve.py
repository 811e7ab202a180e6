"""A YAML pipeline file named in ``--pipelines`` is served like a Python one: listed with its
parameters, submitted to over HTTP, run by the server's worker, and its bad input refused."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import conftest

PIPELINE = """
name: linecount
title: Line count
description: Counts the lines of a CSV file, and converts it to JSON.
retention: 2d
queue: default
inputs:
  kinds: [file, text]
  extensions: [csv, txt]
  max_size: 4096
params:
  type: object
  title: LinecountParams
  additionalProperties: false
  properties:
    label:
      type: string
      default: lines
      pattern: ^[a-z]+$
steps:
  - task: DetectFormat
    accept: [csv]
  - task: SpreadsheetToJson
  - name: count
    command: [wc, -l, "{input}"]
    timeout: 30
  - name: say
    command: [echo, "{params.label}"]
"""


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[conftest.Server]:
    folder = tmp_path_factory.mktemp("yaml-pipelines")
    path = folder / "tools.yaml"
    path.write_text(textwrap.dedent(PIPELINE))
    running = conftest.start_server(folder, pipelines=(str(path),))
    yield running
    conftest.stop_server(running.process)


def finished(server: conftest.Server, run_id: str) -> dict[str, Any]:
    """The results of the run ``run_id``, once it has succeeded."""
    with server.client() as http:
        status = conftest.finished(http, run_id, timeout=60)
        results: dict[str, Any] = http.get(f"/api/v1/runs/{run_id}/results").json()
    assert status["state"] == "succeeded", status
    return results


def test_the_yaml_pipeline_is_listed_with_its_parameters(server: conftest.Server) -> None:
    with server.client() as http:
        listed = http.get("/api/v1/pipelines").json()
    (pipeline,) = [p for p in listed if p["name"] == "linecount"]
    assert pipeline["title"] == "Line count"
    assert pipeline["retention_seconds"] == 2 * 86400
    assert pipeline["inputs"]["extensions"] == ["csv", "txt"]
    assert pipeline["params_schema"]["properties"]["label"]["pattern"] == "^[a-z]+$"
    assert [s["name"] for s in pipeline["steps"]] == [
        "DetectFormat",
        "SpreadsheetToJson",
        "count",
        "say",
    ]


def test_a_run_of_the_yaml_pipeline_runs_its_commands_and_library_tasks(
    server: conftest.Server,
) -> None:
    with server.client() as http:
        response = http.post(
            "/api/v1/pipelines/linecount/runs",
            files={"files": ("data.csv", b"a,b\n1,2\n3,4\n", "text/csv")},
            data={"params": '{"label": "rows"}'},
        )
    assert response.status_code == 201, response.text
    steps = {s["name"]: s for s in finished(server, response.json()["id"])["steps"]}
    assert steps["DetectFormat"]["context"] == {"summary": "data.csv is CSV."}
    assert steps["SpreadsheetToJson"]["context"]["summary"].startswith("2 rows of data.csv")
    assert steps["count"]["context"]["stdout_tail"] == "3 data.csv"
    assert steps["say"]["context"]["stdout_tail"] == "rows"


def test_a_parameter_the_yaml_schema_refuses_is_a_400_naming_it(server: conftest.Server) -> None:
    with server.client() as http:
        response = http.post(
            "/api/v1/pipelines/linecount/runs",
            json={"params": {"label": "Rows!"}, "inputs": [{"kind": "text", "text": "a\n"}]},
        )
    assert response.status_code == 400, response.text
    details = response.json()["error"]["details"]
    assert details == {"params.label": ["String should match pattern '^[a-z]+$'"]}


def test_gristmill_run_runs_a_yaml_file_in_process(tmp_path: Path) -> None:
    path = tmp_path / "tools.yaml"
    path.write_text(textwrap.dedent(PIPELINE))
    data = tmp_path / "data.csv"
    data.write_text("a,b\n1,2\n")
    env = conftest._clean_env()
    done = conftest.subprocess.run(
        [conftest.sys.executable, "-m", "gristmill", "run", str(path), str(data), "-p", "label=x"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "stdout_tail='2 data.csv'" in done.stdout
    assert "stdout_tail='x'" in done.stdout
