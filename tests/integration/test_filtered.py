"""Filtered runs and the records demo through the API, with real workers (local, and Celery on
Redis and on RabbitMQ) on each database: the demo's report and comparison with the previous
run, filtered runs of the failing items (API and the run page's form), and the refusals."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gristmill.app.service import Service
from gristmill.app.submission import wait
from gristmill.demo import generate
from tests.integration.conftest import Workers
from tests.integration.test_access import API, bearer, browser, make_user

DATA = Path(generate.__file__).parent / "data"


def upload(client: Any, path: Path, headers: dict[str, str]) -> str:
    with path.open("rb") as stream:
        answer = client.post(
            f"{API}/pipelines/records-check/runs", {"files": stream}, headers=headers
        )
    assert answer.status_code == 201, answer.content
    return str(answer.json()["id"])


def submit_json(client: Any, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(
        f"{API}/pipelines/records-check/runs",
        json.dumps(body),
        content_type="application/json",
        headers=headers,
    )


def test_the_demo_compares_with_the_previous_run_and_a_filtered_run_takes_the_failing_items(
    site: Service, any_workers: Workers
) -> None:
    any_workers.start(2)  # local workers, and Celery workers on Redis and on RabbitMQ
    user = make_user()
    client, headers = browser(), bearer(user)
    first = upload(client, DATA / "records.jsonl", headers)
    assert wait(first, timeout=120, service=site).state == "succeeded"
    second = upload(client, DATA / "later" / "records.jsonl", headers)
    status = wait(second, timeout=120, service=site)
    assert status.state == "succeeded", status.error
    assert status.run.ancestor_id == first
    report = status.result("RecordsReport")
    assert report["comparison"]["counts"]["added"] == 60
    negative = {c["check"]: c["failed"] for c in report["checks"]}["negative-amount"]
    assert negative > 0

    answer = submit_json(
        client,
        {"inputs": [{"kind": "items", "run": second, "finding": "negative-amount"}]},
        headers,
    )
    assert answer.status_code == 201, answer.content
    filtered = wait(answer.json()["id"], timeout=120, service=site)
    assert filtered.state == "succeeded", filtered.error
    again = filtered.result("RecordsReport")
    assert again["items"] == negative
    assert {c["check"]: c["failed"] for c in again["checks"]}["negative-amount"] == negative
    source = json.loads(filtered.run.inputs[0].source)
    assert source == {"finding": "negative-amount", "run": second, "step": "check_records"}
    assert filtered.run.ancestor_id is None  # another source: not compared

    answer = submit_json(
        client,
        {"inputs": [{"kind": "items", "run": second, "where": "$.status", "value": "pending"}]},
        headers,
    )
    by_path = wait(answer.json()["id"], timeout=120, service=site)
    assert by_path.state == "succeeded", by_path.error
    assert by_path.run.ancestor_id is None  # not the filtered run before: no automatic ancestor
    pending = {c["check"]: c["failed"] for c in report["checks"]}["unknown-status"]
    assert by_path.result("RecordsReport")["items"] == pending

    signed_in = browser(user)
    page = signed_in.get(f"/runs/{by_path.id}/").content.decode()
    assert 'id="run-filtered-from"' in page and f"/runs/{second}/" in page
    assert "where $.status == &quot;pending&quot;" in page

    # From the run page's form: the items with a finding, by the same pipeline.
    source_page = signed_in.get(f"/runs/{second}/").content.decode()
    assert 'id="filtered-form"' in source_page and "negative-amount" in source_page
    form = {"step": "check_records", "by": "finding", "finding": "unknown-currency"}
    posted = signed_in.post(f"/runs/{second}/filtered/", form)
    assert posted.status_code == 303
    from_form = posted["Location"].rstrip("/").rsplit("/", 1)[-1]
    assert wait(from_form, timeout=120, service=site).state == "succeeded"
    currency = {c["check"]: c["failed"] for c in report["checks"]}["unknown-currency"]
    assert wait(from_form, service=site).result("RecordsReport")["items"] == currency

    refused = signed_in.post(f"/runs/{second}/filtered/", {**form, "step": "nope"}, follow=True)
    assert "has no map step" in refused.content.decode()


def test_a_bad_filter_is_refused_with_a_message_per_field(site: Service) -> None:
    user, other = make_user(), make_user()
    client = browser()
    hidden = client.post(
        f"{API}/pipelines/trivial/runs",
        "{}",
        content_type="application/json",
        headers=bearer(other),
    )
    assert hidden.status_code == 201, hidden.content
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"run": "x", "where": "buyer", "value": 1}, "inputs.0.where", 'a path starts with "$"'),
        ({"run": "x", "where": "$.a"}, "inputs.0.value", "is required with 'where'"),
        ({"run": "x"}, "inputs.0", "give either 'where' and 'value', or 'finding'"),
        ({"run": "x", "finding": "k", "url": "u"}, "inputs.0.url", "is not a field"),
        ({"finding": "k"}, "inputs.0.run", "is required for a items input"),
    ]
    # a run of another user is refused as if it did not exist
    cases.append(({"run": hidden.json()["id"], "finding": "k"}, "inputs.0.run", "no run with id"))
    for given, field, message in cases:
        answer = submit_json(client, {"inputs": [{"kind": "items", **given}]}, bearer(user))
        assert answer.status_code == 400, (given, answer.content)
        details = answer.json()["error"]["details"]
        assert any(message in text for text in details[field]), (given, details)
