"""Inputs checked by content: an upload whose content is not what its name says is refused
naming what was expected and found; a URL with no extension is named by its content (or its
Content-Type), and one whose content is not accepted fails the run saying so."""

from __future__ import annotations

import io
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import UrlInput
from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.api import error, file, upload

if TYPE_CHECKING:
    from ninja.testing import TestClient


def _xlsx() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("xl/workbook.xml", "<workbook/>")
    return buffer.getvalue()


def test_an_upload_whose_content_is_not_what_its_name_says_is_refused(
    client: TestClient,
) -> None:
    response = upload(client, "json-or-csv", [file("data.json", _xlsx())])
    assert response.status_code == 400
    message = "data.json: expected JSON as its name says, but the content is an XLSX spreadsheet"
    assert response.json() == error("invalid", message, {"inputs": [message]})


class Served(BaseHTTPRequestHandler):
    """``/api/records`` (JSON, no extension), ``/export`` (one column served as text/csv),
    ``/data.json`` (an HTML error page) and ``/download`` (a PDF)."""

    PAGES = {
        "/api/records": (b'[{"id": 1}]', "application/json"),
        "/export": (b"id\n1\n2\n", "text/csv"),
        "/data.json": (b"<!DOCTYPE html><html><body>Log in</body></html>", "text/html"),
        "/download": (b"%PDF-1.4\n", "application/octet-stream"),
    }

    def do_GET(self) -> None:
        body, media_type = self.PAGES[self.path]
        self.send_response(200)
        self.send_header("Content-Type", media_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def served(service: Service) -> Iterator[tuple[Service, str]]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Served)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    loopback = replace(service, settings=replace(service.settings, fetch_allow=("127.0.0.1/32",)))
    try:
        yield loopback, f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_without_an_extension_is_named_by_its_content_and_content_type(
    served: tuple[Service, str],
) -> None:
    service, base = served
    urls = [UrlInput(f"{base}/api/records"), UrlInput(f"{base}/export")]
    run_id = submit("json-or-csv", urls, service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    assert [(i.name, i.media_type) for i in status.run.inputs] == [
        ("records.json", "application/json"),
        ("export.csv", "text/csv"),
    ]
    log = [line.text for line in service.store.read_log(run_id)]
    assert f"fetched {base}/api/records as records.json (11 bytes)" in log


@pytest.mark.parametrize(
    ("path", "found"), [("/data.json", "HTML"), ("/download", "a PDF document")]
)
def test_a_url_whose_content_is_not_accepted_fails_the_run_saying_what_it_is(
    served: tuple[Service, str], path: str, found: str
) -> None:
    service, base = served
    run_id = submit("json-or-csv", [UrlInput(f"{base}{path}")], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    name = path.strip("/")
    assert status.error == f"{name}: expected .json, .csv, but the content is {found}"


def test_a_file_given_in_python_is_checked_the_same_way(service: Service, tmp_path: str) -> None:
    from pathlib import Path

    path = Path(tmp_path) / "table.csv"
    path.write_text('{"not": "a table"}', encoding="utf-8")
    with pytest.raises(SubmissionError) as refused:
        submit("json-or-csv", [path], service=service)
    assert refused.value.errors == {
        "inputs": ["table.csv: expected CSV as its name says, but the content is JSON"]
    }
