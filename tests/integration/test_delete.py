"""Deleting a run over the API: its files and heavy rows go at once, a small record stays so
that its URL says what happened."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import TextInput
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.test_web import page

if TYPE_CHECKING:
    from django.test import Client

API = "/api/v1"


def test_deleting_an_ended_run_removes_its_files_rows_and_results(
    service: Service, web: Client
) -> None:
    run_id = submit("reports", [TextInput("a\nb")], {"title": "T"}, service=service)
    run_inline(service, run_id)
    run_dir = service.storage.run_dir(run_id)
    assert any(run_dir.rglob("*"))

    assert web.delete(f"{API}/runs/{run_id}").status_code == 204

    status = get_run(run_id, service=service)
    assert status.state == RunState.EXPIRED
    assert status.run.error_message == "deleted by a user"
    assert status.run.inputs == [] and status.outputs == []
    assert service.store.read_log(run_id) == []
    assert not run_dir.exists()
    assert web.get(f"{API}/runs/{run_id}/outputs").json() == []
    html = page(web.get(f"/runs/{run_id}/"))
    assert html.one("#run-error").text.endswith("its files were removed. Deleted by a user.")
    assert html.select("#steps") == [] and html.select("#run-expiry") == []


def test_a_run_still_queued_cannot_be_deleted(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    response = web.delete(f"{API}/runs/{run_id}")
    assert response.status_code == 409
    assert response.json()["error"]["message"] == (
        "the run is still queued; cancel it first, then delete it"
    )
    assert get_run(run_id, service=service).state == RunState.QUEUED


def test_a_deleted_run_cannot_be_deleted_or_rerun_again(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    run_inline(service, run_id)
    assert web.delete(f"{API}/runs/{run_id}").status_code == 204
    again = web.delete(f"{API}/runs/{run_id}")
    assert (again.status_code, again.json()["error"]["message"]) == (
        409,
        "the run has already expired; its files are gone",
    )
    assert web.post(f"{API}/runs/{run_id}/rerun").status_code == 409


def test_deleting_an_unknown_run_is_not_found(web: Client) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    response = web.delete(f"{API}/runs/{unknown}")
    assert response.status_code == 404
