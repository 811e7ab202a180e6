"""The REST API on each database: listing pipelines and submitting runs (JSON and multipart),
with every refusal in the one error format."""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

import pytest
from django.utils.datastructures import MultiValueDict

from gristmill.app.service import Service
from gristmill.app.submission import get_run
from gristmill.states import RunState
from tests.integration.api import MULTIPART, RawUpload, error, file, submitted, upload

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient

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
    message = "Input should be a valid integer"
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


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (
            '{"params": {"top": 1' + "9" * 5000 + "}}",
            "holds an integer too long to read: 5,001 digits at line 1 column 20 (at most 4,300)",
        ),
        (
            '{"inputs": ' + "[" * 50_000 + "]" * 50_000 + "}",
            "is nested too deeply to read: 50,001 levels at line 1 column 50011",
        ),
    ],
)
def test_extreme_json_in_the_body_is_refused_with_where(
    client: TestClient, body: str, detail: str
) -> None:
    response = client.post(
        "/pipelines/trivial/runs", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400
    message = f"the body {detail}"
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
