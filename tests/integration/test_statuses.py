"""The API and the pages answer an error with the same status, from the one map."""

from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.errors import ConflictError, PermissionDeniedError, StoreUnavailableError
from tests.integration.api import submitted
from tests.integration.test_web import page

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [
        (
            ConflictError("the run is being moved; try again"),
            409,
            "the run is being moved; try again",
        ),
        (PermissionDeniedError("only staff can see this run"), 403, "only staff can see this run"),
        (
            StoreUnavailableError("could not connect: connection refused"),
            503,
            "the database is unavailable; try again in a moment",
        ),
        (
            OSError(errno.ENOSPC, "No space left on device"),
            507,
            "the server has no room to store this; try again later",
        ),
    ],
)
def test_a_page_and_the_api_answer_an_error_with_the_same_status_and_message(
    service: Service,
    client: TestClient,
    web: Client,
    monkeypatch: pytest.MonkeyPatch,
    error: Exception,
    status: int,
    message: str,
) -> None:
    run_id = submitted(client, "trivial")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(service.store, "get_run_and_steps", failing)
    api = client.get(f"/runs/{run_id}")
    shown = web.get(f"/runs/{run_id}/")
    assert (api.status_code, shown.status_code) == (status, status)
    assert api.json()["error"]["message"] == message
    assert page(shown).texts("#error-message") == [f"{message[0].upper()}{message[1:]}."]


def test_a_page_and_the_api_answer_an_unexpected_error_with_a_reference_only(
    service: Service, client: TestClient, web: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = submitted(client, "trivial")

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("the disk caught fire")

    monkeypatch.setattr(service.store, "get_run_and_steps", failing)
    api = client.get(f"/runs/{run_id}")
    shown = web.get(f"/runs/{run_id}/")
    assert (api.status_code, shown.status_code) == (500, 500)
    assert api.json()["error"]["message"].startswith("internal error, reference ")
    (text,) = page(shown).texts("#error-message")
    assert text.startswith("Internal error, reference ")
    assert b"fire" not in api.content and b"fire" not in shown.content
