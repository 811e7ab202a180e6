"""gristmill serve, over HTTP, as a program would use it."""

from __future__ import annotations

import hashlib
import io
import random
import zipfile
from pathlib import Path
from typing import Any

from tests.e2e.conftest import Server, finished, start_server, stop_server
from tests.integration.conftest import wait_until


def test_the_server_answers_health_checks(server: Server) -> None:
    with server.client() as client:
        body = client.get("/healthz").json()
        assert (body["status"], body["database"], body["workers"]) == ("ok", "ok", "ok")
        beating = wait_until(
            lambda: client.get("/healthz").json()["supervisors"], message="a heartbeat"
        )
    assert [(s["workers"], s["alive"]) for s in beating] == [(1, True)]


def test_pipelines_are_listed_with_their_parameter_schema(server: Server) -> None:
    with server.client() as client:
        pipelines = {p["name"]: p for p in client.get("/api/v1/pipelines").json()}
    assert {"trivial", "upper"} <= set(pipelines)
    assert pipelines["trivial"]["params_schema"]["properties"]["value"]["type"] == "integer"


def test_a_json_submission_runs_on_the_workers(server: Server) -> None:
    with server.client() as client:
        answer = client.post("/api/v1/pipelines/trivial/runs", json={"params": {"value": 5}})
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]
        status = finished(client, run_id)
        assert status["state"] == "succeeded"
        results = client.get(f"/api/v1/runs/{run_id}/results").json()
    assert results["steps"][0]["context"] == {"ok": True, "value": 5}


def test_an_uploaded_file_is_processed_and_its_output_downloaded(server: Server) -> None:
    with server.client() as client:
        answer = client.post(
            "/api/v1/pipelines/upper/runs",
            files={"files": ("note.txt", b"quiet words", "text/plain")},
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]
        assert finished(client, run_id)["state"] == "succeeded"
        (output,) = client.get(f"/api/v1/runs/{run_id}/outputs").json()
        download = client.get(output["url"])
        log = client.get(f"/api/v1/runs/{run_id}/log").json()
    assert download.status_code == 200 and download.content == b"QUIET WORDS"
    assert [line["text"] for line in log["lines"]] == ["shouted 11 characters"]


def test_a_megabyte_upload_reaches_the_worker_whole_and_comes_back_in_the_zip(
    server: Server,
) -> None:
    data = random.Random(3).randbytes(1 << 20)  # any byte, boundaries' dashes included
    with server.client() as client:
        answer = client.post(
            "/api/v1/pipelines/checksum/runs",
            files={"files": ("blob.bin", data, "application/octet-stream")},
        )
        assert answer.status_code == 201, answer.text
        run_id = answer.json()["id"]
        assert finished(client, run_id)["state"] == "succeeded"
        (result,) = client.get(f"/api/v1/runs/{run_id}/results").json()["steps"]
        with client.stream("GET", f"/api/v1/runs/{run_id}/outputs.zip") as download:
            assert download.status_code == 200
            assert download.headers["content-type"] == "application/zip"
            archive = b"".join(download.iter_bytes())
    digest = hashlib.sha256(data).hexdigest()
    assert result["context"] == {"size": len(data), "sha256": digest}
    with zipfile.ZipFile(io.BytesIO(archive)) as zipped:
        assert zipped.testzip() is None
        names = sorted(zipped.namelist())
        copied = next(zipped.read(name) for name in names if name.endswith("copy.bin"))
        summary = next(zipped.read(name) for name in names if name.endswith("summary.txt"))
    assert len(names) == 2
    assert copied == data
    assert summary == f"{len(data)} {digest}\n".encode()


def test_an_oversize_upload_is_refused_and_nothing_is_stored(server: Server) -> None:
    before = (
        set((server.data_dir / "runs").glob("*")) if (server.data_dir / "runs").exists() else set()
    )
    with server.client() as client:
        answer = client.post(
            "/api/v1/pipelines/upper/runs", files={"files": ("big.txt", b"x" * 2048, "text/plain")}
        )
    assert answer.status_code == 413
    assert answer.json()["error"]["details"] == {
        "inputs": ["big.txt: the file is larger than this pipeline's limit of 1 KiB"]
    }
    after = (
        set((server.data_dir / "runs").glob("*")) if (server.data_dir / "runs").exists() else set()
    )
    assert after == before


def test_an_unknown_run_is_a_404_in_the_error_format(server: Server) -> None:
    with server.client() as client:
        answer = client.get("/api/v1/runs/00000000-0000-4000-8000-000000000000")
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"


def session_members(session: int) -> list[int]:
    """Process ids in the given session (from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[3]) == session:  # field 6 of stat: the session id
                members.append(int(entry.name))
    return members


def test_sigterm_stops_the_server_and_its_workers(tmp_path: Any) -> None:
    running = start_server(tmp_path, workers=2)
    with running.client() as client:
        assert client.get("/healthz").status_code == 200
    wait_until(
        lambda: len(session_members(running.process.pid)) >= 4,
        message="the server, its supervisor and 2 workers",
    )
    assert stop_server(running.process) == 0
    assert session_members(running.process.pid) == []
