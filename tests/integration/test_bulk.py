"""Bulk submission on each database: many runs of one pipeline in one transaction, from Python
and over the REST API; all or nothing, each refusal named by the entry's index and field."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import MAX_BULK_ENTRIES, Entry, get_run, submit_many, wait_many
from gristmill.authoring.inputs import TextInput
from gristmill.errors import SubmissionError, SubmissionTooLargeError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.api import error

if TYPE_CHECKING:
    from ninja.testing import TestClient


def run_dirs(service: Service) -> set[Any]:
    return set((service.storage.root / "runs").glob("*"))


# -- Python -------------------------------------------------------------------------------


def test_submit_many_stores_every_run_queued_in_order(service: Service) -> None:
    entries = [Entry(params={"value": n}) for n in range(5)]

    run_ids = submit_many("trivial", entries, service=service)

    assert len(set(run_ids)) == 5
    for n, run_id in enumerate(run_ids):
        run = get_run(run_id, service=service).run
        assert (run.state, run.params) == (RunState.QUEUED, {"control": "", "value": n})


def test_runs_submitted_in_bulk_run_to_the_end(service: Service) -> None:
    run_ids = submit_many(
        "picky", [Entry([TextInput("a")]), Entry([TextInput("bb")])], service=service
    )
    for run_id in run_ids:
        run_inline(service, run_id)

    assert [get_run(r, service=service).state for r in run_ids] == [RunState.SUCCEEDED] * 2
    assert [get_run(r, service=service).run.inputs[0].size for r in run_ids] == [1, 2]


def test_wait_many_returns_when_every_run_has_ended(service: Service) -> None:
    entries = [Entry(params={"value": n}) for n in range(3)]
    run_ids = submit_many("trivial", entries, service=service)
    for run_id in run_ids[:2]:
        run_inline(service, run_id)

    with pytest.raises(TimeoutError, match=r"1 of 3 runs did not finish within 0\.01 s"):
        wait_many(run_ids, timeout=0.01, service=service)
    run_inline(service, run_ids[2])
    statuses = wait_many(run_ids, timeout=30, service=service)

    assert [s.id for s in statuses] == run_ids
    assert [s.result("one")["value"] for s in statuses] == [0, 1, 2]


def test_one_refused_entry_stores_nothing_and_is_named_by_index_and_field(
    service: Service,
) -> None:
    before = run_dirs(service)
    entries = [
        Entry([TextInput("fine")]),
        Entry([TextInput("fine")], {"value": "many"}),
        Entry([]),
    ]

    with pytest.raises(SubmissionError) as refused:
        submit_many("picky", entries, service=service)

    not_integer = "Input should be a valid integer, unable to parse string as an integer"
    assert refused.value.errors == {
        "entries.1.params.value": [not_integer],
        "entries.2.inputs": ["this pipeline needs an input; 0 given"],
    }
    assert run_dirs(service) == before


def test_an_input_over_the_size_limit_refuses_the_whole_bulk_as_too_large(
    service: Service,
) -> None:
    before = run_dirs(service)
    entries = [Entry([TextInput("fine")]), Entry([TextInput("x" * 17, name="big.txt")])]

    with pytest.raises(SubmissionTooLargeError) as refused:
        submit_many("picky", entries, service=service)

    assert refused.value.errors == {
        "entries.1.inputs": ["big.txt: the file is larger than this pipeline's limit of 16 bytes"]
    }
    assert run_dirs(service) == before


def test_no_entries_or_too_many_are_refused(service: Service) -> None:
    with pytest.raises(SubmissionError) as none:
        submit_many("trivial", [], service=service)
    assert none.value.errors == {"entries": ["give at least one entry"]}

    with pytest.raises(SubmissionError) as many:
        submit_many("trivial", [Entry()] * (MAX_BULK_ENTRIES + 1), service=service)
    assert many.value.errors == {
        "entries": [f"at most {MAX_BULK_ENTRIES} entries at once; {MAX_BULK_ENTRIES + 1} given"]
    }


# -- REST API -----------------------------------------------------------------------------


def test_a_bulk_submission_answers_every_run_with_its_links(
    service: Service, client: TestClient
) -> None:
    body = {
        "entries": [
            {"params": {"value": 1}},
            {"params": {"value": 2}, "inputs": [{"kind": "text", "text": "hi"}]},
        ]
    }

    response = client.post("/pipelines/trivial/runs/bulk", json=body)

    assert response.status_code == 201, response.json()
    answer = response.json()
    assert answer["count"] == 2
    first, second = answer["runs"]
    assert first["status_url"] == f"/api/v1/runs/{first['id']}"
    assert get_run(first["id"], service=service).run.params["value"] == 1
    assert get_run(second["id"], service=service).run.inputs[0].name == "input.txt"


def test_a_bulk_submission_with_a_bad_entry_stores_nothing(
    service: Service, client: TestClient
) -> None:
    before = run_dirs(service)
    body = {
        "entries": [
            {"inputs": [{"kind": "text", "text": "fine"}]},
            {"params": {"value": "3"}, "inputs": [{"kind": "text", "text": "fine"}]},
            {"inputs": [{"kind": "url"}]},
        ]
    }

    response = client.post("/pipelines/trivial/runs/bulk", json=body)

    assert response.status_code == 400
    assert response.json() == error(
        "invalid",
        "entries.2.inputs.0.url: is required for a url input",
        {"entries.2.inputs.0.url": ["is required for a url input"]},
    )
    body["entries"].pop()
    response = client.post("/pipelines/trivial/runs/bulk", json=body)
    assert response.status_code == 400
    message = "Input should be a valid integer"
    assert response.json() == error(
        "invalid", f"entries.1.params.value: {message}", {"entries.1.params.value": [message]}
    )
    assert run_dirs(service) == before


@pytest.mark.parametrize(
    ("body", "field", "message"),
    [
        ([], "body", "the body must be a JSON object with a list of 'entries'"),
        ({"entries": []}, "entries", f"give 1 to {MAX_BULK_ENTRIES} entries; none given"),
        ({"entries": [1]}, "entries.0", "must be a JSON object with 'params' and 'inputs'"),
        ({"entries": [{}], "x": 1}, "x", "unknown field (a bulk submission has 'entries')"),
        (
            {"entries": [{"parms": {}}]},
            "entries.0.parms",
            "unknown field (an entry has 'params', 'inputs', 'ancestor', 'notify_email' and "
            "'webhook_url')",
        ),
        ({"entries": [{"params": 3}]}, "entries.0.params", "must be a JSON object"),
    ],
)
def test_a_malformed_bulk_body_is_refused_at_its_field(
    client: TestClient, body: Any, field: str, message: str
) -> None:
    response = client.post("/pipelines/trivial/runs/bulk", json=body)
    assert response.status_code == 400
    summary = message if field == "body" else f"{field}: {message}"
    assert response.json() == error("invalid", summary, {field: [message]})


def test_too_many_entries_are_refused(client: TestClient) -> None:
    body = {"entries": [{}] * (MAX_BULK_ENTRIES + 1)}
    response = client.post("/pipelines/trivial/runs/bulk", json=body)
    assert response.status_code == 400
    message = f"give 1 to {MAX_BULK_ENTRIES} entries; {MAX_BULK_ENTRIES + 1} given"
    assert response.json() == error("invalid", f"entries: {message}", {"entries": [message]})


def test_a_bulk_submission_to_an_unknown_pipeline_is_not_found(client: TestClient) -> None:
    response = client.post("/pipelines/nope/runs/bulk", json={"entries": [{}]})
    assert response.status_code == 404
