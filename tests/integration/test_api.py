"""The REST API on each database: pipelines, submissions, runs, logs, results and outputs.

Requests go through ninja's test client, or Django's for whole HTTP requests (``wire``); runs
are executed in this process with the inline executor.
"""

from __future__ import annotations

import errno
import hashlib
import io
import json
import logging
import zipfile
from collections.abc import Iterator
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
from django.utils.datastructures import MultiValueDict

from gristmill.engine.store import Report
from gristmill.errors import StoreUnavailableError
from gristmill.executors.inline import run_inline
from gristmill.runs import RunState
from gristmill.service import Service, set_default_service
from gristmill.submission import get_run, submit

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient

MULTIPART = {"Content-Type": "multipart/form-data; boundary=test"}
UNKNOWN_RUN = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def client(service: Service) -> Iterator[TestClient]:
    """A test client of the API, whose views use the test's service."""
    from ninja.testing import TestClient

    from gristmill.server.api import api

    set_default_service(service)
    try:
        yield TestClient(api)
    finally:
        set_default_service(None)


@pytest.fixture
def wire(client: TestClient) -> Iterator[Client]:
    """Django's test client: whole HTTP requests, parsed by Django, to the API's URLs."""
    from django.test import Client, override_settings
    from django.urls import path

    from gristmill.server.api import api

    urls = ModuleType("api_test_urls")
    urls.urlpatterns = [path("api/v1/", api.urls)]  # type: ignore[attr-defined]
    with override_settings(ROOT_URLCONF=urls, ALLOWED_HOSTS=["testserver"]):
        yield Client()


def error(code: str, message: str, details: dict[str, list[str]] | None = None) -> Any:
    return {"error": {"code": code, "message": message, "details": details or {}}}


def file(name: str, data: bytes, media_type: str = "text/plain") -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=media_type)


class RawUpload:
    """An uploaded file named as a hostile client names it, before any framework cleans it."""

    def __init__(self, name: str, data: bytes):
        self.name = name
        self.file = io.BytesIO(data)
        self.content_type = "text/plain"


def upload(client: TestClient, pipeline: str, files: list[Any], params: str | None = None) -> Any:
    data = {} if params is None else {"params": params}
    return client.post(
        f"/pipelines/{pipeline}/runs",
        data=data,
        FILES=MultiValueDict({"files": files}),
        headers=MULTIPART,
    )


def submitted(client: TestClient, pipeline: str, body: Any = None) -> str:
    response = client.post(f"/pipelines/{pipeline}/runs", json=body or {})
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def finished(service: Service, client: TestClient, pipeline: str, body: Any = None) -> str:
    run_id = submitted(client, pipeline, body)
    run_inline(service, run_id)
    return run_id


def report_run(service: Service, client: TestClient) -> str:
    """A succeeded run of ``reports``, with two outputs and a step whose context() fails."""
    inputs = [{"kind": "text", "text": "a\nb\nc", "name": "words.txt"}]
    return finished(service, client, "reports", {"params": {"title": "T"}, "inputs": inputs})


# -- pipelines ----------------------------------------------------------------------------


def test_pipelines_are_listed_with_inputs_and_parameter_schema(client: TestClient) -> None:
    response = client.get("/pipelines")
    assert response.status_code == 200
    by_name = {pipeline["name"]: pipeline for pipeline in response.json()}
    assert {"trivial", "picky", "reports"} <= set(by_name)
    assert by_name["picky"] == {
        "name": "picky",
        "title": "Picky",
        "description": "",
        "steps": [{"name": "one", "title": "one"}],
        "inputs": {
            "kinds": ["file", "text"],
            "extensions": ["txt", "csv"],
            "max_size": 16,
            "min_count": 1,
            "max_count": 2,
        },
        "params_schema": {
            "properties": {
                "control": {"default": "", "title": "Control", "type": "string"},
                "value": {"default": 1, "title": "Value", "type": "integer"},
            },
            "title": "Params",
            "type": "object",
        },
        "queue": "default",
        "retention_seconds": 7 * 24 * 3600,
        "access": "anyone",
        "submit_url": "/api/v1/pipelines/picky/runs",
    }


def test_one_pipeline_is_described(client: TestClient) -> None:
    response = client.get("/pipelines/trivial")
    assert response.status_code == 200
    assert response.json()["submit_url"] == "/api/v1/pipelines/trivial/runs"
    assert response.json()["steps"] == [{"name": "one", "title": "one"}]


def test_an_unknown_pipeline_is_not_found(client: TestClient) -> None:
    response = client.get("/pipelines/nope")
    assert response.status_code == 404
    assert response.json() == error("not_found", "no pipeline named 'nope'")


# -- submitting ---------------------------------------------------------------------------


def test_a_json_submission_is_accepted_with_links(service: Service, client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json={"params": {"value": 3}})
    assert response.status_code == 201
    run_id = response.json()["id"]
    assert response.json() == {
        "id": run_id,
        "url": f"/runs/{run_id}/",
        "status_url": f"/api/v1/runs/{run_id}",
        "log_url": f"/api/v1/runs/{run_id}/log",
        "results_url": f"/api/v1/runs/{run_id}/results",
        "outputs_url": f"/api/v1/runs/{run_id}/outputs",
        "outputs_zip_url": f"/api/v1/runs/{run_id}/outputs.zip",
    }
    run = get_run(run_id, service=service).run
    assert (run.state, run.params) == (RunState.QUEUED, {"control": "", "value": 3})


def test_an_empty_body_submits_with_default_parameters(
    service: Service, client: TestClient
) -> None:
    response = client.post("/pipelines/trivial/runs")
    assert response.status_code == 201
    assert get_run(response.json()["id"], service=service).run.params == {
        "control": "",
        "value": 1,
    }


def test_an_inline_json_input_is_stored(service: Service, client: TestClient) -> None:
    body = {"inputs": [{"kind": "json", "value": {"a": [1, 2]}, "name": "data.json"}]}
    run = get_run(submitted(client, "skipping", body), service=service).run
    (stored,) = run.inputs
    assert (stored.name, stored.kind) == ("data.json", "json")
    assert json.loads(service.storage.path(stored.path).read_text()) == {"a": [1, 2]}


def test_an_inline_text_input_is_stored(service: Service, client: TestClient) -> None:
    body = {"inputs": [{"kind": "text", "text": "hello"}]}
    run = get_run(submitted(client, "skipping", body), service=service).run
    (stored,) = run.inputs
    assert (stored.name, stored.kind, stored.size) == ("input.txt", "text", 5)


def test_uploaded_files_and_params_are_stored(service: Service, client: TestClient) -> None:
    files = [file("a.txt", b"first"), file("b.csv", b"x,y\n", "text/csv")]
    response = upload(client, "picky", files, params='{"value": 9}')
    assert response.status_code == 201
    run = get_run(response.json()["id"], service=service).run
    assert run.params["value"] == 9
    assert [(i.name, i.size, i.sha256, i.media_type) for i in run.inputs] == [
        ("a.txt", 5, hashlib.sha256(b"first").hexdigest(), "text/plain"),
        ("b.csv", 4, hashlib.sha256(b"x,y\n").hexdigest(), "text/csv"),
    ]
    assert service.storage.path(run.inputs[0].path).read_bytes() == b"first"


def test_a_multipart_body_from_the_wire_is_parsed_and_stored(
    service: Service, wire: Client
) -> None:
    response = wire.post(
        "/api/v1/pipelines/picky/runs",
        {"files": [file("notes.txt", b"hello")], "params": '{"value": 4}'},
    )
    assert response.status_code == 201, response.content
    run = get_run(response.json()["id"], service=service).run
    assert [(i.name, i.size) for i in run.inputs] == [("notes.txt", 5)]
    assert run.params["value"] == 4


def test_a_multipart_body_without_a_boundary_is_refused(wire: Client) -> None:
    response = wire.generic(
        "POST", "/api/v1/pipelines/picky/runs", b"--x--", content_type="multipart/form-data"
    )
    assert response.status_code == 400
    assert response.json() == error(
        "invalid", "the request cannot be read: Invalid boundary in multipart: None"
    )


def test_a_body_over_the_servers_limit_is_refused_as_too_large(wire: Client) -> None:
    from django.test import override_settings

    body = json.dumps({"inputs": [{"kind": "text", "text": "x" * 200}]})
    with override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=100):
        response = wire.post(
            "/api/v1/pipelines/trivial/runs", body, content_type="application/json"
        )
    assert response.status_code == 413
    assert response.json() == error(
        "too_large", "the request body is larger than this server accepts"
    )


def test_submitting_to_an_unknown_pipeline_is_not_found(client: TestClient) -> None:
    response = client.post("/pipelines/nope/runs", json={})
    assert response.status_code == 404
    assert response.json() == error(
        "not_found", "no pipeline named 'nope'", {"pipeline": ["no pipeline named 'nope'"]}
    )


def test_an_unknown_parameter_is_refused(client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json={"params": {"valeu": 3}})
    assert response.status_code == 400
    message = "unknown parameter 'valeu' (this pipeline takes: control, value)"
    assert response.json() == error(
        "invalid", f"params.valeu: {message}", {"params.valeu": [message]}
    )


def test_a_parameter_of_the_wrong_type_is_refused(client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json={"params": {"value": "many"}})
    assert response.status_code == 400
    message = "Input should be a valid integer, unable to parse string as an integer"
    assert response.json() == error(
        "invalid", f"params.value: {message}", {"params.value": [message]}
    )


def test_a_file_type_the_pipeline_does_not_accept_is_refused(client: TestClient) -> None:
    response = upload(client, "picky", [file("data.json", b"{}")])
    assert response.status_code == 400
    message = "data.json: files of this type are not accepted (accepted: .txt, .csv)"
    assert response.json() == error("invalid", message, {"inputs": [message]})


def test_an_input_kind_the_pipeline_does_not_take_is_refused(client: TestClient) -> None:
    body = {"inputs": [{"kind": "json", "value": 1}]}
    response = client.post("/pipelines/picky/runs", json=body)
    assert response.status_code == 400
    message = "input.json: this pipeline does not take json inputs (it takes: file, text)"
    assert response.json() == error("invalid", message, {"inputs": [message]})


def test_too_many_inputs_are_refused(client: TestClient) -> None:
    files = [file(f"{n}.txt", b"x") for n in range(3)]
    response = upload(client, "picky", files)
    assert response.status_code == 400
    message = "this pipeline takes at most 2 inputs; 3 given"
    assert response.json() == error("invalid", message, {"inputs": [message]})


def test_an_upload_over_the_size_limit_is_refused_and_not_kept(
    service: Service, client: TestClient
) -> None:
    before = set((service.storage.root / "runs").glob("*"))
    response = upload(client, "picky", [file("big.txt", b"x" * 17)])
    assert response.status_code == 413
    message = "big.txt: the file is larger than this pipeline's limit of 16 bytes"
    assert response.json() == error("too_large", message, {"inputs": [message]})
    assert set((service.storage.root / "runs").glob("*")) == before


@pytest.mark.parametrize(
    ("name", "stored"),
    [("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"), ("..", "input")],
)
def test_a_path_like_upload_name_is_stored_under_a_safe_name(
    service: Service, client: TestClient, name: str, stored: str
) -> None:
    response = upload(client, "skipping", [RawUpload(name, b"root")])
    assert response.status_code == 201
    run = get_run(response.json()["id"], service=service).run
    (kept,) = run.inputs
    assert kept.name == stored
    assert kept.path == f"runs/{run.id}/inputs/0-{stored}"
    assert service.storage.path(kept.path).read_bytes() == b"root"


def test_a_malformed_json_body_is_refused(client: TestClient) -> None:
    response = client.post(
        "/pipelines/trivial/runs", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    message = (
        "the body is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    )
    assert response.json() == error("invalid", message, {"body": [message]})


def test_a_body_that_is_not_an_object_is_refused(client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json=[1, 2])
    assert response.status_code == 400
    message = "the body must be a JSON object with 'params' and 'inputs'"
    assert response.json() == error("invalid", message, {"body": [message]})


def test_params_that_are_not_an_object_are_refused(client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json={"params": [1]})
    assert response.status_code == 400
    assert response.json() == error(
        "invalid", "params: must be a JSON object", {"params": ["must be a JSON object"]}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[1]", "must be a JSON object"),
        (
            "{oops",
            "is not valid JSON: Expecting property name enclosed in double quotes: "
            "line 1 column 2 (char 1)",
        ),
    ],
)
def test_a_params_form_field_that_is_not_a_json_object_is_refused(
    client: TestClient, text: str, message: str
) -> None:
    response = upload(client, "picky", [file("a.txt", b"x")], params=text)
    assert response.status_code == 400
    assert response.json() == error("invalid", f"params: {message}", {"params": [message]})


def test_files_in_another_form_field_are_refused(client: TestClient) -> None:
    response = client.post(
        "/pipelines/picky/runs",
        FILES=MultiValueDict({"file": [file("a.txt", b"x")]}),
        headers=MULTIPART,
    )
    assert response.status_code == 400
    message = "upload files in the field 'files'"
    assert response.json() == error("invalid", f"file: {message}", {"file": [message]})


def test_a_url_input_to_a_pipeline_that_takes_none_is_refused(client: TestClient) -> None:
    body = {"inputs": [{"kind": "url", "url": "https://example.org/data.csv"}]}
    response = client.post("/pipelines/trivial/runs", json=body)
    message = (
        "https://example.org/data.csv: this pipeline does not take url inputs "
        "(it takes: file, json, text)"
    )
    assert response.status_code == 400
    assert response.json() == error("invalid", message, {"inputs": [message]})


def test_an_input_that_is_not_an_object_is_refused(client: TestClient) -> None:
    response = client.post("/pipelines/trivial/runs", json={"inputs": ["data.csv"]})
    assert response.status_code == 400
    message = "must be a JSON object with a 'kind'"
    assert response.json() == error("invalid", f"inputs.0: {message}", {"inputs.0": [message]})


# -- runs ---------------------------------------------------------------------------------


def test_a_finished_run_shows_its_state_and_steps(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "reporting")
    response = client.get(f"/runs/{run_id}")
    assert response.status_code == 200
    body = response.json()
    step = body["steps"][0]
    assert isinstance(step.pop("duration"), float)
    assert step == {
        "name": "report_progress",
        "title": "report_progress",
        "state": "succeeded",
        "attempt": 1,
        "error": None,
    }
    assert (body["id"], body["pipeline"], body["state"]) == (run_id, "reporting", "succeeded")
    assert (body["error"], body["attempt"], body["cancel_requested"]) == (None, 1, False)
    assert body["created_at"] <= body["started_at"] <= body["finished_at"] < body["expires_at"]
    assert body["log_url"] == f"/api/v1/runs/{run_id}/log"


def test_a_running_run_shows_its_current_step_stage_and_progress(
    service: Service, client: TestClient
) -> None:
    run_id = submitted(client, "trivial")
    (claim,) = service.store.claim("api-test", queues=None, lease=30, run_id=run_id)
    live = Report(current_step="one", stage="halfway", progress_done=5, progress_total=10)
    try:
        service.store.flush(claim, live, lease=30)
        body = client.get(f"/runs/{run_id}").json()
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())
    assert (body["state"], body["current_step"], body["stage"]) == ("running", "one", "halfway")
    assert body["progress"] == {"done": 5, "total": 10}
    assert body["steps"][0]["state"] == "running"


def test_a_failed_run_shows_its_reference_but_no_traceback(
    service: Service, client: TestClient
) -> None:
    run_id = finished(service, client, "internal")
    response = client.get(f"/runs/{run_id}")
    reference = get_run(run_id, service=service).run.error_ref
    assert response.json()["error"] == {
        "message": f"internal error, reference {reference}",
        "reference": reference,
        "traceback": None,
    }
    assert b"ZeroDivisionError" not in response.content
    assert b"Traceback" not in response.content


def test_a_task_error_is_shown_on_its_step(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "failing")
    body = client.get(f"/runs/{run_id}").json()
    assert body["error"] == {
        "message": "row 3 has no 'id' field",
        "reference": None,
        "traceback": None,
    }
    assert [(s["name"], s["state"], s["error"]) for s in body["steps"]] == [
        ("one", "succeeded", None),
        ("bad_data", "failed", "row 3 has no 'id' field"),
        ("after", "pending", None),
    ]


RUN_ENDPOINTS = [
    ("GET", "/runs/{}"),
    ("GET", "/runs/{}/log"),
    ("GET", "/runs/{}/results"),
    ("GET", "/runs/{}/outputs"),
    ("GET", "/runs/{}/outputs.zip"),
    ("GET", "/runs/{}/outputs/one/out.txt"),
    ("POST", "/runs/{}/cancel"),
    ("POST", "/runs/{}/rerun"),
]


@pytest.mark.parametrize(("method", "path"), RUN_ENDPOINTS)
@pytest.mark.parametrize("run_id", [UNKNOWN_RUN, "not-a-uuid"])
def test_an_unknown_or_malformed_run_id_is_not_found(
    client: TestClient, method: str, path: str, run_id: str
) -> None:
    response = client.request(method, path.format(run_id))
    assert response.status_code == 404
    assert response.json() == error("not_found", f"no run with id {run_id!r}")


def test_the_log_is_read_from_an_offset(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "reporting")
    body = client.get(f"/runs/{run_id}/log").json()
    assert [(line["step"], line["stream"], line["text"]) for line in body["lines"]] == [
        ("report_progress", "log", "first line"),
        ("report_progress", "log", "second line"),
    ]
    first, second = (line["id"] for line in body["lines"])
    assert body["next"] == second
    after_first = client.get(f"/runs/{run_id}/log?after={first}&limit=1").json()
    assert [line["text"] for line in after_first["lines"]] == ["second line"]
    assert client.get(f"/runs/{run_id}/log?after={second}").json() == {
        "lines": [],
        "next": second,
    }


def test_a_log_limit_over_5000_is_capped(
    service: Service, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = submit("trivial", service=service)
    asked: list[int] = []
    read_log = service.store.read_log

    def spy(run_id: str, *, after: int = 0, limit: int = 1000) -> Any:
        asked.append(limit)
        return read_log(run_id, after=after, limit=limit)

    monkeypatch.setattr(service.store, "read_log", spy)
    response = client.get(f"/runs/{run_id}/log?limit=1000000")
    assert (response.status_code, asked) == (200, [5000])


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("after=-1", "query.after", "Input should be greater than or equal to 0"),
        ("limit=0", "query.limit", "Input should be greater than or equal to 1"),
        (
            "limit=lots",
            "query.limit",
            "Input should be a valid integer, unable to parse string as an integer",
        ),
        (
            "after=99999999999999999999",
            "query.after",
            "Input should be less than or equal to 9223372036854775807",
        ),
    ],
)
def test_bad_log_offsets_are_refused(
    service: Service, client: TestClient, query: str, field: str, message: str
) -> None:
    run_id = submit("trivial", service=service)
    response = client.get(f"/runs/{run_id}/log?{query}")
    assert response.status_code == 422
    assert response.json() == error("invalid", f"{field}: {message}", {field: [message]})


def test_results_show_each_succeeded_steps_context(
    service: Service, client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    run_id = report_run(service, client)
    with caplog.at_level(logging.ERROR, logger="gristmill.api"):
        response = client.get(f"/runs/{run_id}/results")
    assert response.status_code == 200
    body = response.json()
    (record,) = caplog.records
    reference = record.getMessage().rsplit(" ", 1)[-1].rstrip(")")
    assert record.getMessage() == (
        f"context() of step BrokenContext of run {run_id} failed (reference {reference})"
    )
    assert body == {
        "state": "succeeded",
        "steps": [
            {
                "name": "WriteReport",
                "title": "WriteReport",
                "state": "succeeded",
                "context": {"summary": "T: 3 lines of words.txt"},
                "stale": False,
                "stale_reasons": [],
            },
            {
                "name": "BrokenContext",
                "title": "BrokenContext",
                "state": "succeeded",
                "context": {"error": f"internal error, reference {reference}"},
                "stale": False,
                "stale_reasons": [],
            },
        ],
    }


def test_results_of_an_unfinished_run_show_what_exists(
    service: Service, client: TestClient
) -> None:
    run_id = submitted(client, "trivial")
    assert client.get(f"/runs/{run_id}/results").json() == {
        "state": "queued",
        "steps": [
            {
                "name": "one",
                "title": "one",
                "state": "pending",
                "context": None,
                "stale": False,
                "stale_reasons": [],
            }
        ],
    }


# -- outputs ------------------------------------------------------------------------------


def test_outputs_are_listed_with_download_urls(service: Service, client: TestClient) -> None:
    run_id = report_run(service, client)
    response = client.get(f"/runs/{run_id}/outputs")
    assert response.status_code == 200
    base = f"/api/v1/runs/{run_id}/outputs/WriteReport"
    report = b"T\n3 lines\n"
    assert response.json() == [
        {
            "step": "WriteReport",
            "name": "report.txt",
            "size": len(report),
            "sha256": hashlib.sha256(report).hexdigest(),
            "media_type": "text/plain",
            "url": f"{base}/report.txt",
        },
        {
            "step": "WriteReport",
            "name": "tables/counts.csv",
            "size": len(b"lines\n3\n"),
            "sha256": hashlib.sha256(b"lines\n3\n").hexdigest(),
            "media_type": "text/csv",
            "url": f"{base}/tables/counts.csv",
        },
    ]


@pytest.mark.parametrize(
    ("name", "filename", "media_type", "content"),
    [
        ("report.txt", "report.txt", "text/plain", b"T\n3 lines\n"),
        ("tables/counts.csv", "counts.csv", "text/csv", b"lines\n3\n"),
    ],
)
def test_an_output_is_downloaded_as_an_attachment(
    service: Service,
    client: TestClient,
    name: str,
    filename: str,
    media_type: str,
    content: bytes,
) -> None:
    run_id = report_run(service, client)
    response = client.get(f"/runs/{run_id}/outputs/WriteReport/{name}")
    response.close()
    assert response.status_code == 200
    assert response.content == content
    assert response["Content-Type"] == media_type
    assert response["Content-Disposition"] == f'attachment; filename="{filename}"'


@pytest.mark.parametrize(
    ("step", "name"),
    [
        ("WriteReport", "missing.txt"),
        ("WriteReport", "../../inputs/0-words.txt"),
        ("x", "report.txt"),
    ],
)
def test_a_name_that_is_not_an_output_is_not_found(
    service: Service, client: TestClient, step: str, name: str
) -> None:
    run_id = report_run(service, client)
    response = client.get(f"/runs/{run_id}/outputs/{step}/{name}")
    assert response.status_code == 404
    assert response.json() == error(
        "not_found", f"step {step!r} of this run has no output named {name!r}"
    )


def test_all_outputs_are_streamed_as_one_zip(service: Service, client: TestClient) -> None:
    run_id = report_run(service, client)
    response = client.get(f"/runs/{run_id}/outputs.zip")
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"] == "application/zip"
    assert response["Content-Disposition"] == f'attachment; filename="run-{run_id}.zip"'
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert archive.testzip() is None
        assert {name: archive.read(name) for name in archive.namelist()} == {
            "WriteReport/report.txt": b"T\n3 lines\n",
            "WriteReport/tables/counts.csv": b"lines\n3\n",
        }


# -- cancel and rerun ---------------------------------------------------------------------


def test_cancelling_a_queued_run_ends_it(service: Service, client: TestClient) -> None:
    run_id = submitted(client, "trivial")
    response = client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 202
    assert response.json() == {"state": "cancelled"}


def test_cancelling_a_running_run_asks_it_to_stop(service: Service, client: TestClient) -> None:
    run_id = submitted(client, "trivial")
    (claim,) = service.store.claim("api-test", queues=None, lease=30, run_id=run_id)
    try:
        response = client.post(f"/runs/{run_id}/cancel")
        assert response.status_code == 202
        assert response.json() == {"state": "running"}
        assert client.get(f"/runs/{run_id}").json()["cancel_requested"] is True
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())


def test_cancelling_an_ended_run_is_a_conflict(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "trivial")
    response = client.post(f"/runs/{run_id}/cancel")
    assert response.status_code == 409
    assert response.json() == error(
        "conflict", "the run has already ended (succeeded); there is nothing to cancel"
    )


def test_rerunning_an_ended_run_queues_it_again(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "trivial")
    response = client.post(f"/runs/{run_id}/rerun")
    assert response.status_code == 202
    assert response.json() == {"state": "queued"}
    assert run_inline(service, run_id) == RunState.SUCCEEDED


def test_rerunning_a_queued_run_is_a_conflict(client: TestClient) -> None:
    run_id = submitted(client, "trivial")
    response = client.post(f"/runs/{run_id}/rerun")
    assert response.status_code == 409
    assert response.json() == error(
        "conflict", "the run is still queued; wait for it to end to run it again"
    )


# -- the unexpected -----------------------------------------------------------------------


def test_an_unexpected_error_answers_500_with_a_logged_reference(
    service: Service,
    client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    run_id = submitted(client, "trivial")
    monkeypatch.setattr(service.store, "read_log", broken)
    with caplog.at_level(logging.ERROR, logger="gristmill.api"):
        response = client.get(f"/runs/{run_id}/log")
    (record,) = caplog.records
    reference = record.getMessage().rsplit(" ", 1)[-1].rstrip(")")
    assert record.getMessage() == f"GET /runs/{run_id}/log failed (reference {reference})"
    assert record.exc_info is not None and record.exc_info[0] is RuntimeError
    assert response.status_code == 500
    assert response.json() == error("internal", f"internal error, reference {reference}")
    assert b"fire" not in response.content


def test_a_database_that_cannot_take_the_run_answers_503_and_keeps_nothing(
    service: Service, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unavailable(*args: Any, **kwargs: Any) -> Any:
        raise StoreUnavailableError("the run could not be stored: database is locked")

    monkeypatch.setattr(service.store, "create_run", unavailable)
    before = set((service.storage.root / "runs").glob("*"))
    body = {"inputs": [{"kind": "text", "text": "hello"}]}
    response = client.post("/pipelines/skipping/runs", json=body)
    assert response.status_code == 503
    assert response.json() == error(
        "unavailable", "the database is unavailable; try again in a moment"
    )
    assert set((service.storage.root / "runs").glob("*")) == before


def test_a_full_disk_answers_507_and_keeps_nothing(
    service: Service, client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(*args: Any, **kwargs: Any) -> Any:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(service.storage, "save_input", full)
    before = set((service.storage.root / "runs").glob("*"))
    body = {"inputs": [{"kind": "text", "text": "hello"}]}
    response = client.post("/pipelines/skipping/runs", json=body)
    assert response.status_code == 507
    assert response.json() == error(
        "insufficient_storage", "the server has no room to store this; try again later"
    )
    assert set((service.storage.root / "runs").glob("*")) == before


def test_the_openapi_document_describes_every_endpoint(client: TestClient) -> None:
    from gristmill.server.api import api

    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    operations = {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }
    assert set(operations) == {
        ("GET", "/api/v1/pipelines"),
        ("GET", "/api/v1/pipelines/{name}"),
        ("POST", "/api/v1/pipelines/{name}/runs"),
        ("GET", "/api/v1/runs/{run_id}"),
        ("GET", "/api/v1/runs/{run_id}/log"),
        ("GET", "/api/v1/runs/{run_id}/results"),
        ("POST", "/api/v1/runs/{run_id}/cancel"),
        ("POST", "/api/v1/runs/{run_id}/rerun"),
        ("GET", "/api/v1/runs/{run_id}/outputs"),
        ("GET", "/api/v1/runs/{run_id}/outputs.zip"),
        ("GET", "/api/v1/runs/{run_id}/outputs/{step}/{name}"),
        ("DELETE", "/api/v1/runs/{run_id}"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/{token_id}"),
        ("GET", "/api/v1/datafiles"),
        ("POST", "/api/v1/datafiles"),
        ("GET", "/api/v1/datafiles/{file_id}"),
        ("GET", "/api/v1/datafiles/{file_id}/content"),
        ("DELETE", "/api/v1/datafiles/{file_id}"),
    }
    assert all(operation.get("description") for operation in operations.values())
    submit_body = operations["POST", "/api/v1/pipelines/{name}/runs"]["requestBody"]
    assert set(submit_body["content"]) == {"application/json", "multipart/form-data"}


def test_a_method_a_path_does_not_take_is_refused_in_the_error_format(
    client: TestClient,
) -> None:
    response = client.delete("/pipelines/trivial/runs")
    assert response.status_code == 405
    assert response["Allow"] == "POST"
    assert response.json() == error("method_not_allowed", "DELETE is not allowed here; use POST")


def test_an_unknown_path_is_not_found_in_the_error_format(client: TestClient) -> None:
    response = client.get("/pipelines/trivial/nothing-here")
    assert response.status_code == 404
    assert response.json() == error(
        "not_found", "there is no API endpoint at /pipelines/trivial/nothing-here"
    )


@pytest.mark.parametrize("path", ["/api/v1/", "/api/v1/runs", "/api/v1/pipelines/"])
def test_a_path_that_is_no_endpoint_is_not_found_on_the_wire(wire: Client, path: str) -> None:
    response = wire.get(path)
    assert response.status_code == 404
    assert response.json() == error("not_found", f"there is no API endpoint at {path}")
