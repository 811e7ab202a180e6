"""The REST API on each database: a run's status, log, results and outputs; cancel and rerun."""

from __future__ import annotations

import hashlib
import io
import logging
import zipfile
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from gristmill.store.records import Report
from tests.integration.api import UNKNOWN_RUN, error, finished, report_run, submitted

if TYPE_CHECKING:
    from ninja.testing import TestClient

# -- runs ---------------------------------------------------------------------------------


def test_a_finished_run_shows_its_state_and_steps(service: Service, client: TestClient) -> None:
    run_id = finished(service, client, "reporting")
    response = client.get(f"/runs/{run_id}")
    assert response.status_code == 200
    body = response.json()
    step = body["steps"][0]
    assert isinstance(step.pop("duration"), float)
    assert step.pop("started_at") <= step.pop("finished_at")
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


def test_a_run_shows_what_reproduces_it(service: Service, client: TestClient) -> None:
    """The pipeline's version (its steps' code), the parameters and the inputs' digests."""
    body = client.get(f"/runs/{report_run(service, client)}").json()
    assert len(body["version"]) == 64
    again = client.get(f"/runs/{report_run(service, client)}").json()
    assert again["version"] == body["version"]  # the same code: the same version
    other = client.get(f"/runs/{finished(service, client, 'reporting')}").json()
    assert other["version"] not in (None, body["version"])
    assert body["params"]["title"] == "T"
    assert [(i["name"], i["sha256"], i["size"]) for i in body["inputs"]] == [
        ("words.txt", hashlib.sha256(b"a\nb\nc").hexdigest(), 5)
    ]


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
