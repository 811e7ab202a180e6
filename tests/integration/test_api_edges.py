"""The edges of the API's contract: every answer under /api/v1/ is in the error format and in
the OpenAPI document, whatever the path, body or content type."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest

from tests.integration.api import error

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
    assert response.json() == error("invalid", "the request could not be read")


def test_pages_keep_their_html_error_pages(web: Client) -> None:
    response = web.get("/nothing%0A")
    assert response.status_code == 404
    assert response["Content-Type"] == "text/html; charset=utf-8"
