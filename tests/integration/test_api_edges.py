"""The edges of the API's contract: every answer under /api/v1/ is in the error format and in
the OpenAPI document, whatever the path, body or content type."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from tests.integration.api import error
from tests.integration.test_access import browser, make_user

if TYPE_CHECKING:
    from django.test import Client

# -- paths --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/api/v1/nothing%0A", "there is no API endpoint at /api/v1/nothing\n"),
        ("/api/v1/runs/a%0Ab/nothing", "there is no API endpoint at /api/v1/runs/a\nb/nothing"),
        ("/api/v1/runs/abc%0Adef", "no run with id 'abc\\ndef'"),
    ],
)
def test_a_path_with_an_encoded_newline_is_answered_in_the_error_format(
    web: Client, path: str, message: str
) -> None:
    response = web.get(path)
    assert response.status_code == 404
    assert response.json() == error("not_found", message)


def test_a_request_django_refuses_before_the_api_is_answered_in_the_error_format(
    web: Client,
) -> None:
    response = web.get("/api/v1/pipelines", HTTP_HOST="evil.example")
    assert response.status_code == 400
    assert response.json() == error(
        "invalid", "the Host header names a host this server does not answer for"
    )


def test_pages_keep_their_html_error_pages(web: Client) -> None:
    response = web.get("/nothing%0A")
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"


# -- multipart bodies ---------------------------------------------------------------------


def multipart(*parts: tuple[str, str | None, bytes]) -> bytes:
    """A multipart/form-data body with boundary ``b``: (field, file name or None, bytes)."""
    body = b""
    for field, filename, data in parts:
        disposition = f'form-data; name="{field}"'
        if filename is not None:
            disposition += f'; filename="{filename}"'
        body += f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + data + b"\r\n"
    return body + b"--b--\r\n"


FORM = "multipart/form-data; boundary=b"
UNNAMED = 'each file needs a file name (filename="..." in its part\'s Content-Disposition)'


def test_a_file_part_with_an_empty_file_name_is_refused_as_unnamed(web: Client) -> None:
    body = multipart(("files", "", b"some text"))
    response = web.post("/api/v1/pipelines/trivial/runs", body, content_type=FORM)
    assert response.status_code == 400
    assert response.json() == error("invalid", f"files: {UNNAMED}", {"files": [UNNAMED]})


def test_an_empty_file_part_without_a_name_is_no_file(web: Client) -> None:
    body = multipart(("files", "", b""), ("params", None, b'{"value": 2}'))
    response = web.post("/api/v1/pipelines/trivial/runs", body, content_type=FORM)
    assert response.status_code == 201


def test_a_data_file_with_an_empty_file_name_is_refused_as_unnamed(site: Service) -> None:
    client = browser(make_user())
    body = multipart(("file", "", b"some text"))
    response = client.post("/api/v1/datafiles", body, content_type=FORM)
    message = 'the file needs a file name (filename="..." in its part\'s Content-Disposition)'
    assert response.status_code == 400
    assert response.json() == error("invalid", f"file: {message}", {"file": [message]})


# -- pages --------------------------------------------------------------------------------

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


@pytest.mark.parametrize("path", ["/", "/pipelines/trivial/", "/nothing-here", "/sign-in/"])
def test_pages_carry_a_content_security_policy(web: Client, path: str) -> None:
    response = web.get(path)
    assert response["Content-Security-Policy"] == CSP


def test_pages_hold_no_inline_script_or_style(web: Client) -> None:
    run = web.post("/pipelines/trivial/", {"value": "2"})
    assert run.status_code == 303
    for path in ["/", "/pipelines/trivial/", run["Location"], "/sign-in/"]:
        page = web.get(path).content.decode()
        assert "<style" not in page and " style=" not in page, path
        scripts = page.count("<script")
        assert scripts == page.count("<script src="), path


def test_api_answers_carry_no_page_policy(web: Client) -> None:
    assert "Content-Security-Policy" not in web.get("/api/v1/pipelines")


# -- media types of bodies ----------------------------------------------------------------

RUNS = "/api/v1/pipelines/trivial/runs"
SUBMISSION_TYPES = "send the body as application/json or multipart/form-data"


@pytest.mark.parametrize(
    ("content_type", "message"),
    [
        ("text/plain", f"{SUBMISSION_TYPES}, not text/plain"),
        ("text/plain; charset=utf-8", f"{SUBMISSION_TYPES}, not text/plain"),
        (
            "application/x-www-form-urlencoded",
            f"{SUBMISSION_TYPES}, not application/x-www-form-urlencoded",
        ),
        ("", f"{SUBMISSION_TYPES}, with a Content-Type header"),
    ],
)
def test_a_submission_in_another_media_type_is_refused_and_stores_nothing(
    site: Service, web: Client, content_type: str, message: str
) -> None:
    before = set((site.storage.root / "runs").glob("*"))
    body = '{"inputs": [{"kind": "text", "text": "from another site"}]}'
    response = web.post(RUNS, body, content_type=content_type)
    assert response.status_code == 415
    assert response.json() == error("unsupported_media_type", message)
    assert set((site.storage.root / "runs").glob("*")) == before


def test_a_submission_without_a_body_needs_no_media_type(web: Client) -> None:
    assert web.post(RUNS, b"", content_type="").status_code == 201


def test_a_data_file_sent_as_json_is_refused(site: Service) -> None:
    response = browser(make_user()).post(
        "/api/v1/datafiles", {"file": "x"}, content_type="application/json"
    )
    assert response.status_code == 415
    assert response.json() == error(
        "unsupported_media_type", "send the body as multipart/form-data, not application/json"
    )


# -- tokens -------------------------------------------------------------------------------


def test_a_token_requested_as_text_plain_is_refused(site: Service) -> None:
    response = browser(make_user()).post(
        "/api/v1/tokens", '{"name": "laptop"}', content_type="text/plain"
    )
    assert response.status_code == 415
    assert response.json() == error(
        "unsupported_media_type", "send the body as application/json, not text/plain"
    )


def test_a_token_request_that_is_not_json_is_refused_in_the_documented_shape(
    site: Service,
) -> None:
    response = browser(make_user()).post("/api/v1/tokens", "\x00", content_type="application/json")
    message = "the body is not valid JSON: Expecting value: line 1 column 1 (char 0)"
    assert response.status_code == 400
    assert response.json() == error("invalid", message, {"body": [message]})


def test_a_token_without_a_name_is_refused_by_field(site: Service) -> None:
    response = browser(make_user()).post("/api/v1/tokens", "{}", content_type="application/json")
    assert response.status_code == 422
    assert response.json() == error("invalid", "name: Field required", {"name": ["Field required"]})


@pytest.mark.parametrize("token_id", ["abc", "1.5", "99999999999999999999999", "²"])
def test_revoking_a_token_id_that_is_not_a_number_is_not_found(
    site: Service, token_id: str
) -> None:
    response = browser(make_user()).delete(f"/api/v1/tokens/{token_id}")
    assert response.status_code == 404
    assert response.json() == error("not_found", f"you have no API token with id {token_id}")


# -- downloads ----------------------------------------------------------------------------


def uploaded(name: str, data: bytes, media_type: str) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type=media_type)


@pytest.mark.parametrize(
    ("name", "declared", "served"),
    [
        ("page.html", "text/html", "application/octet-stream"),
        ("logo.svg", "image/svg+xml", "application/octet-stream"),
        ("page.xhtml", "application/xhtml+xml", "application/octet-stream"),
        ("table.csv", "text/csv", "text/csv"),
        ("photo.png", "image/png", "image/png"),
    ],
)
def test_a_data_file_is_downloaded_in_its_type_only_if_that_is_safe(
    site: Service, name: str, declared: str, served: str
) -> None:
    client = browser(make_user())
    made = client.post(
        "/api/v1/datafiles", {"file": uploaded(name, b"<script>1</script>", declared)}
    )
    assert made.status_code == 201
    assert made.json()["media_type"] == declared
    response = client.get(made.json()["content_url"])
    assert response["Content-Type"] == served
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Content-Disposition"] == f'attachment; filename="{name}"'
    assert b"".join(response.streaming_content) == b"<script>1</script>"


# -- the OpenAPI document -----------------------------------------------------------------


def openapi_operations() -> dict[tuple[str, str], Any]:
    from gristmill.server.api import api

    schema = api.get_openapi_schema(path_prefix="/api/v1/")
    return {
        (method.upper(), path): operation
        for path, methods in schema["paths"].items()
        for method, operation in methods.items()
    }


def test_the_document_lets_every_operation_be_called_anonymously(site: Service) -> None:
    for key, operation in openapi_operations().items():
        assert operation["security"] == [{}, {"CallerAuth": []}], key


def test_the_document_names_the_answers_every_operation_may_give(site: Service) -> None:
    for key, operation in openapi_operations().items():
        assert {"401", "5XX"} <= {str(status) for status in operation["responses"]}, key
        if "requestBody" in operation:
            assert {"413", "415"} <= {str(status) for status in operation["responses"]}, key


def test_the_document_lists_the_media_types_downloads_are_sent_in(site: Service) -> None:
    operations = openapi_operations()
    for path in [
        "/api/v1/datafiles/{file_id}/content",
        "/api/v1/runs/{run_id}/outputs/{step}/{name}",
    ]:
        content = operations["GET", path]["responses"][200]["content"]
        assert "application/octet-stream" in content and "text/csv" in content
        assert "text/html" not in content and "image/svg+xml" not in content


# -- parameters ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("5", "Input should be a valid integer"),
        (True, "Input should be a valid integer"),
        (2.5, "Input should be a valid integer"),
    ],
)
def test_api_parameters_are_validated_strictly(web: Client, value: Any, message: str) -> None:
    response = web.post(RUNS, {"params": {"value": value}}, content_type="application/json")
    assert response.status_code == 400
    assert response.json() == error(
        "invalid", f"params.value: {message}", {"params.value": [message]}
    )


def test_form_parameters_of_the_api_are_validated_strictly_too(web: Client) -> None:
    body = multipart(("params", None, b'{"value": "5"}'))
    response = web.post(RUNS, body, content_type=FORM)
    message = "Input should be a valid integer"
    assert response.json() == error(
        "invalid", f"params.value: {message}", {"params.value": [message]}
    )


def test_the_web_form_converts_its_text_fields_deliberately(web: Client) -> None:
    response = web.post("/pipelines/trivial/", {"value": "5"})
    assert response.status_code == 303


def test_long_text_parameters_are_refused_by_default(web: Client) -> None:
    params = {"control": "x" * 10_001}
    response = web.post(RUNS, {"params": params}, content_type="application/json")
    message = "is longer than 10,000 characters"
    assert response.json() == error(
        "invalid", f"params.control: {message}", {"params.control": [message]}
    )


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "[" * 100_000 + "]" * 100_000,
            "this is nested too deeply to read: 100,000 levels at line 1 column 100000",
        ),
        (
            "[" + "9" * 5000 + "]",
            "this holds an integer too long to read: 5,000 digits at line 1 column 2 "
            "(at most 4,300)",
        ),
    ],
)
def test_extreme_json_pasted_in_the_form_is_refused_with_where(
    web: Client, text: str, message: str
) -> None:
    response = web.post("/pipelines/json-only/", {"text": text})
    assert response.status_code == 400
    assert message in response.content.decode()


@pytest.mark.parametrize(
    ("declared", "served"),
    [
        ("text/csv; charset=utf-8", "text/csv"),
        ("TEXT/PLAIN", "text/plain"),
        ("text/html; charset=utf-8", "application/octet-stream"),
        ("application/javascript", "application/octet-stream"),
        ("", "application/octet-stream"),
    ],
)
def test_outputs_and_data_files_share_one_rule_for_the_served_type(
    databases: Any, declared: str, served: str
) -> None:
    from gristmill.server.api.downloads import served_type

    assert served_type(declared) == served
