"""The run page of a map step, on each database: its panel (items, batches, findings by kind
with examples, failed batches; partial while batches remain), the findings table on demand,
and the "Retry failed batches" button."""

from __future__ import annotations

from pathlib import Path

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import LocalFile
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.test_access import browser, make_user
from tests.integration.test_maps import dataset, expected
from tests.integration.test_web import Node, page

ITEMS = 1200


def finish(service: Service, run_id: str) -> RunState:
    """Run every queued unit of the run here, until it ends."""
    while run_inline(service, run_id) is not None:
        pass
    state = get_run(run_id, service=service).state
    assert state.is_terminal
    return state


def failed_run(service: Service, tmp_path: Path, control: Path, owner: object = None) -> str:
    (control / "broken").touch()
    data = LocalFile(dataset(tmp_path / "data.jsonl", ITEMS))
    params = {"control": str(control), "bad": 777}
    owner_id = getattr(owner, "pk", None)
    run_id = submit("mapping-continue", [data], params, service=service, owner_id=owner_id)
    assert finish(service, run_id) == RunState.SUCCEEDED
    return run_id


def kinds(panel: Node) -> dict[str, str]:
    return {row.one("th").text: row.one("td.num").text for row in panel.select("tr.map-kind")}


def test_an_ended_map_shows_its_aggregate_and_failed_batch_and_retries_it(
    service: Service, site: None, tmp_path: Path, control: Path
) -> None:
    owner = make_user()
    run_id = failed_run(service, tmp_path, control, owner)
    client = browser(owner)
    html = page(client.get(f"/runs/{run_id}/"))
    panel = html.one("article#map-check")
    assert "hidden" in panel.one("span.map-partial").attrs
    assert "partial" not in panel.attrs["class"].split()
    assert panel.one("p.map-items").text == "1,200 of 1,200 items, 1 failed"
    assert panel.one("p.map-batches").text == "Batches: 3 done, 0 pending (of 3)"
    sevens = ITEMS // 7 - 1  # 777 failed
    fifties = len([n for n in range(50, ITEMS + 1, 50) if n % 7])
    assert kinds(panel) == {"seven": str(sevens), "fifty": str(fifties), "round": str(fifties)}
    seven_examples = panel.select("tr.map-kind")[0].texts("ul.map-examples li")
    assert seven_examples == [
        '{"kind":"seven","n":7}',
        '{"kind":"seven","n":14}',
        '{"kind":"seven","n":21}',
    ]
    assert panel.texts("li.map-failed-batch") == [
        "Batch 2 (items 501 to 1,000)item 777: ValueError: cannot check item 777"
    ]
    download = panel.one("a.map-download").attrs["href"]
    assert download == f"/api/v1/runs/{run_id}/findings.jsonl?step=check"
    assert client.get(download).status_code == 200
    assert [b.attrs["id"] for b in html.select("#run-actions button")] == [
        "retry-batches",
        "rerun",
        "pin",
        "filtered-submit",  # a new run from these items
        "delete-confirm",
    ]

    (control / "broken").unlink()
    answer = client.post(f"/runs/{run_id}/retry-batches/")
    assert answer.status_code == 303
    html = page(client.get(answer["Location"]))
    assert html.texts("#messages li") == [
        "Queued again: 1 failed batch is retried, and only those."
    ]
    panel = html.one("article#map-check")
    assert panel.one("span.map-partial").text == "partial — 2 of 3 batches"
    assert "hidden" not in panel.one("span.map-partial").attrs
    assert panel.one("p.map-batches").text == "Batches: 2 done, 1 pending (of 3)"
    assert finish(service, run_id) == RunState.SUCCEEDED
    html = page(client.get(f"/runs/{run_id}/"))
    panel = html.one("article#map-check")
    assert panel.one("p.map-items").text == "1,200 of 1,200 items"
    assert kinds(panel)["seven"] == str(ITEMS // 7)
    assert "hidden" in panel.one("div.map-failed").attrs
    assert "retry-batches" not in [b.attrs["id"] for b in html.select("#run-actions button")]
    answer = client.post(f"/runs/{run_id}/retry-batches/")
    html = page(client.get(answer["Location"]))
    assert html.texts("#messages li.message-error") == ["The run has no failed batches to retry."]


def test_findings_are_shown_a_page_at_a_time_on_demand(
    service: Service, site: None, tmp_path: Path, control: Path
) -> None:
    run_id = failed_run(service, tmp_path, control)
    client = browser()
    assert page(client.get(f"/runs/{run_id}/")).select("section#findings") == []
    html = page(client.get(f"/runs/{run_id}/", {"findings": "check"}))
    rows = html.select("section#findings table.findings tbody tr")
    without = [n for n in expected(ITEMS) if n != 777]
    shown = [int(row.select("td")[0].text.replace(",", "")) for row in rows]
    assert shown == without[: len(shown)] and 50 <= len(shown) <= 51
    following = html.one("#findings-next").attrs["href"]
    assert following == f"?findings=check&after={shown[-1]}#findings"
    html = page(client.get(f"/runs/{run_id}/{following.split('#')[0]}"))
    first = html.select("section#findings table.findings tbody tr")[0]
    assert int(first.select("td")[0].text.replace(",", "")) > shown[-1]

    html = page(client.get(f"/runs/{run_id}/", {"findings": "check", "kind": "round"}))
    assert {r.select("td")[1].text for r in html.select("table.findings tbody tr")} == {"round"}
    for query, message in (
        ({"findings": "nope"}, "This run has no started map step “nope”."),
        (
            {"findings": "check", "after": "x"},
            "The page asked for is not a page of findings (after must be an item number).",
        ),
    ):
        answer = client.get(f"/runs/{run_id}/", query)
        assert answer.status_code == 200
        assert page(answer).texts("section#findings p.notice") == [message]


def test_a_map_failed_under_fail_lists_its_failed_batch_and_offers_the_retry(
    service: Service, site: None, tmp_path: Path, control: Path
) -> None:
    (control / "broken").touch()
    data = LocalFile(dataset(tmp_path / "data.jsonl", ITEMS))
    run_id = submit("mapping", [data], {"control": str(control), "bad": 777}, service=service)
    assert finish(service, run_id) == RunState.FAILED
    client = browser()
    html = page(client.get(f"/runs/{run_id}/"))
    panel = html.one("article#map-check")
    batches = panel.one("p.map-batches").text
    assert batches.startswith("Batches: ") and "1 failed" in batches, batches
    [failed] = panel.select("li.map-failed-batch")
    assert failed.text.startswith("Batch 2 (items 501 to 1,000): ")
    assert "item 777: ValueError: cannot check item 777" in failed.text
    assert "retry-batches" in [b.attrs["id"] for b in html.select("#run-actions button")]
    (control / "broken").unlink()
    answer = client.post(f"/runs/{run_id}/retry-batches/")
    assert answer.status_code == 303
    assert finish(service, run_id) == RunState.SUCCEEDED
    panel = page(client.get(f"/runs/{run_id}/")).one("article#map-check")
    assert panel.one("p.map-batches").text == "Batches: 3 done, 0 pending (of 3)"
    assert kinds(panel)["seven"] == str(ITEMS // 7)
