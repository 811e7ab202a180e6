"""Helpers of the REST API tests: submitting runs and the expected error answers. The test
clients (``client``: ninja's; ``wire``: Django's, for whole HTTP requests) are fixtures in
``conftest.py``; runs are executed in the test's process with the inline executor."""

from __future__ import annotations

import io
from typing import TYPE_CHECKING, Any

from django.utils.datastructures import MultiValueDict

from gristmill.app.service import Service
from gristmill.executors.inline import run_inline

if TYPE_CHECKING:
    from ninja.testing import TestClient

MULTIPART = {"Content-Type": "multipart/form-data; boundary=test"}
UNKNOWN_RUN = "00000000-0000-4000-8000-000000000000"


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
