"""The REST API on each database when something fails on the server, its OpenAPI document,
and requests to paths and methods it does not have."""

from __future__ import annotations

import errno
import logging
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.errors import StoreUnavailableError
from tests.integration.api import error, submitted

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient

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
        ("POST", "/api/v1/pipelines/{name}/runs/bulk"),
        ("GET", "/api/v1/runs/{run_id}"),
        ("GET", "/api/v1/runs/{run_id}/log"),
        ("GET", "/api/v1/runs/{run_id}/results"),
        ("POST", "/api/v1/runs/{run_id}/cancel"),
        ("POST", "/api/v1/runs/{run_id}/rerun"),
        ("GET", "/api/v1/runs/{run_id}/outputs"),
        ("GET", "/api/v1/runs/{run_id}/outputs.zip"),
        ("GET", "/api/v1/runs/{run_id}/outputs/{step}/{name}"),
        ("DELETE", "/api/v1/runs/{run_id}"),
        ("POST", "/api/v1/runs/{run_id}/steps/{step}/accept"),
        ("PUT", "/api/v1/runs/{run_id}/pin"),
        ("DELETE", "/api/v1/runs/{run_id}/pin"),
        ("GET", "/api/v1/runs/{run_id}/findings"),
        ("GET", "/api/v1/runs/{run_id}/findings.jsonl"),
        ("POST", "/api/v1/runs/{run_id}/retry-batches"),
        ("GET", "/api/v1/tokens"),
        ("POST", "/api/v1/tokens"),
        ("DELETE", "/api/v1/tokens/{token_id}"),
        ("GET", "/api/v1/datafiles"),
        ("POST", "/api/v1/datafiles"),
        ("GET", "/api/v1/datafiles/{file_id}"),
        ("GET", "/api/v1/datafiles/{file_id}/content"),
        ("DELETE", "/api/v1/datafiles/{file_id}"),
        ("GET", "/api/v1/datafiles/{file_id}/document"),
        ("POST", "/api/v1/datafiles/{file_id}/document"),
        ("POST", "/api/v1/datafiles/{file_id}/conversions"),
        ("GET", "/api/v1/documents"),
        ("GET", "/api/v1/runs/{run_id}/notifications"),
        ("GET", "/api/v1/runs/{run_id}/shares"),
        ("POST", "/api/v1/runs/{run_id}/shares/link"),
        ("DELETE", "/api/v1/runs/{run_id}/shares/link"),
        ("PUT", "/api/v1/runs/{run_id}/shares/users/{username}"),
        ("DELETE", "/api/v1/runs/{run_id}/shares/users/{username}"),
        ("GET", "/api/v1/shared/runs"),
        ("GET", "/api/v1/shared/{token}"),
        ("GET", "/api/v1/account/notifications"),
        ("PUT", "/api/v1/account/notifications"),
        ("GET", "/api/v1/account/usage"),
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
