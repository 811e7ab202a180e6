"""The web pages in a real browser: headless Chromium from Debian, driven by Playwright."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import CHROMIUM, FLAGS, Server  # noqa: F401 - CHROMIUM, FLAGS: as before


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    """The test process's Chromium (:func:`tests.e2e.conftest.chromium`); each test's
    :func:`page` has a context of its own."""
    return chromium


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(accept_downloads=True)
    opened = context.new_page()
    opened.set_default_timeout(20_000)
    yield opened
    context.close()


def test_the_run_page_updates_live_then_shows_the_results(
    server: Server, page: Any, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    page.goto(f"{server.url}pipelines/holding/")
    page.fill("#id_control", str(control))
    page.click("#submit-button")
    page.wait_for_url("**/runs/*/")
    page.wait_for_selector("#step-hold.state-running")  # updated by run.js, no reload
    assert len(loads) == 2  # the form, then the run page
    assert page.text_content("#run-state").strip() == "running"
    (control / "release").touch()
    page.wait_for_selector("#results")
    assert page.text_content("#run-state").strip() == "succeeded"
    assert "attempt" in page.text_content("#result-hold")


def test_a_running_run_is_cancelled_with_its_button_and_the_page_follows(
    server: Server, page: Any, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    page.goto(f"{server.url}pipelines/holding/")
    page.fill("#id_control", str(control))
    page.click("#submit-button")
    page.wait_for_selector("#step-hold.state-running")
    page.click("#cancel")
    page.wait_for_selector("#run-state.state-cancelled")  # the step stops; run.js reloads
    run_id = page.get_attribute("#run", "data-run-id")
    with server.client() as http:
        asked = http.get(f"api/v1/runs/{run_id}").json()["cancel_requested_at"]
    at = datetime.fromisoformat(asked)
    assert page.text_content("#run-error").strip() == (
        f"This run was cancelled by someone who was not signed in on "
        f"{at:%-d %B %Y, %H:%M:%S} UTC, while its step “hold” was running."
    )
    assert page.query_selector("#cancel") is None
    assert page.query_selector("#rerun") is not None


def test_a_file_submitted_in_the_form_gives_an_output_to_download(
    server: Server, page: Any, tmp_path: Path
) -> None:
    note = tmp_path / "note.txt"
    note.write_text("quiet words")
    page.goto(f"{server.url}pipelines/upper/")
    page.set_input_files("#id_files", str(note))
    page.click("#submit-button")
    page.wait_for_selector("#results")
    with page.expect_download() as download_info:
        page.click("a.output")
    saved = tmp_path / "downloaded.txt"
    download_info.value.save_as(saved)
    assert saved.read_text() == "QUIET WORDS"


def test_a_bad_form_shows_the_error_next_to_the_field(
    server: Server, page: Any, tmp_path: Path
) -> None:
    table = tmp_path / "table.csv"
    table.write_text("a,b\n")
    page.goto(f"{server.url}pipelines/upper/")
    page.set_input_files("#id_files", str(table))
    page.click("#submit-button")
    error = page.text_content("#field-files .field-error")
    assert error.strip() == "table.csv: files of this type are not accepted (accepted: .txt)"


def test_a_failed_run_shows_its_message(server: Server, page: Any) -> None:
    page.goto(f"{server.url}pipelines/failing/")
    page.click("#submit-button")
    page.wait_for_selector("#run-error")
    assert page.text_content("#run-error").strip() == "row 3 has no 'id' field"


def test_a_stale_runs_page_follows_its_recomputation_to_the_fresh_results(
    page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Its own server, offering a pipeline whose step's version is read from a file.
    from tests.e2e import conftest
    from tests.e2e.stale_pipelines import EDITION
    from tests.integration.conftest import wait_until

    edition = tmp_path / "edition"
    edition.write_text("1")
    monkeypatch.setenv(EDITION, str(edition))
    stale_pipelines = str(Path(__file__).with_name("stale_pipelines.py"))
    server = conftest.start_server(tmp_path, pipelines=(conftest.PIPELINES, stale_pipelines))
    try:
        with server.client() as http:
            run = http.post("api/v1/pipelines/rules/runs", json={}).json()
            wait_until(lambda: http.get(run["status_url"]).json()["state"] == "succeeded")
        edition.write_text("2")  # a new edition of the rules is deployed
        (tmp_path / "hold").touch()
        loads: list[str] = []
        page.on("load", lambda _: loads.append(page.url))
        page.goto(server.url + run["url"].lstrip("/"))
        assert page.text_content("#run-state").strip() in ("queued", "running")
        assert page.text_content("#result-ApplyRules .stale-mark").strip() == "stale"
        assert page.text_content("#result-ApplyRules .stale-reasons li").strip() == (
            "version of `Apply rules` 1 → 2"
        )
        assert page.text_content("#result-summary .stale-reasons li").strip() == (
            "upstream step `ApplyRules` was recomputed"
        )
        assert page.text_content("#result-summary td").strip() == "3 rows checked against edition 1"
        (tmp_path / "hold").unlink()
        page.wait_for_selector("#result-ApplyRules:not(.stale)")  # no reload by the user
        assert len(loads) == 2  # the page, then run.js's own reload when the run ended
        assert page.text_content("#run-state").strip() == "succeeded"
        assert page.text_content("#result-summary td").strip() == "3 rows checked against edition 2"
        assert page.query_selector_all(".stale-mark, .step-stale, #stale-notice") == []
    finally:
        conftest.stop_server(server.process)


def _submit(server: Server, pipeline: str, data: Path, params: dict[str, Any]) -> str:
    with server.client() as http, data.open("rb") as file:
        answer = http.post(
            f"api/v1/pipelines/{pipeline}/runs",
            files={"files": (data.name, file)},
            data={"params": json.dumps(params)},
        )
    assert answer.status_code == 201, answer.text
    run_id: str = answer.json()["id"]
    return run_id


def _items(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(1, count + 1)))
    return path


def _kinds(page: Any, panel: str) -> dict[str, str]:
    rows = page.query_selector_all(f"{panel} tr.map-kind")
    return {
        row.query_selector("th").inner_text(): row.query_selector("td").inner_text() for row in rows
    }


def test_a_running_map_shows_partial_findings_live_then_the_final_aggregate(
    server: Server, page: Any, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    busy = tmp_path / "busy"
    busy.mkdir()
    data = _items(tmp_path / "items.jsonl", 20_000)
    # The server's one worker is kept busy, so that the page is loaded while the run waits:
    # everything of its map step's panel is then the work of run.js.
    with server.client() as http:
        answer = http.post("api/v1/pipelines/holding/runs", json={"params": {"control": str(busy)}})
        assert answer.status_code == 201, answer.text
    # 100 batches of 200 items; the last one (item 19,999) waits for the test to release it.
    run_id = _submit(server, "milling", data, {"control": str(control), "hold": 19_999})
    loads: list[str] = []
    page.on("load", lambda _: loads.append(page.url))
    page.goto(f"{server.url}runs/{run_id}/")
    panel = "#map-mill"
    assert page.text_content("#run-state").strip() == "queued"
    assert page.is_hidden("#maps") and page.query_selector(panel) is None
    (busy / "release").touch()
    page.wait_for_selector(f"{panel} .map-partial:not([hidden])")  # made by run.js
    partial = page.inner_text(f"{panel} .map-partial")
    assert re.fullmatch(r"partial — \d+ of 100 batches", partial), partial
    page.wait_for_function(
        "() => document.querySelector('#map-mill .map-partial').textContent"
        " === 'partial — 99 of 100 batches'"
    )
    with server.client() as http:
        [summary] = http.get(f"api/v1/runs/{run_id}").json()["maps"]
    assert summary["partial"] is True
    assert _kinds(page, panel) == {k: f"{n:,}" for k, n in summary["counts"].items()}
    assert _kinds(page, panel)["hundred"] == "198"  # 100 to 19,800: the held batch not yet
    assert page.inner_text(f"{panel} .map-items") == "19,800 of 20,000 items"
    assert page.inner_text(f"{panel} .map-batches") == "Batches: 99 done, 1 pending (of 100)"
    assert page.query_selector_all(f"{panel} tr.map-kind .map-examples li")
    assert page.inner_text(f"{panel} caption") == "Findings by kind, so far"
    assert loads == [page.url]  # all of it updated in place

    (control / "release").touch()
    page.wait_for_selector("#run-state.state-succeeded")  # run.js reloads once at the end
    assert page.is_hidden(f"{panel} .map-partial")
    assert page.inner_text(f"{panel} .map-items") == "20,000 of 20,000 items"
    assert page.inner_text(f"{panel} caption") == "Findings by kind"
    assert _kinds(page, panel)["hundred"] == "200"
    with server.client() as http:
        [summary] = http.get(f"api/v1/runs/{run_id}").json()["maps"]
    assert summary["partial"] is False
    assert _kinds(page, panel) == {k: f"{n:,}" for k, n in summary["counts"].items()}
    href = page.get_attribute(f"{panel} a.map-download", "href")
    assert href == f"/api/v1/runs/{run_id}/findings.jsonl?step=mill"


def test_a_failed_batch_is_listed_and_retried_with_its_button(
    server: Server, page: Any, tmp_path: Path
) -> None:
    control = tmp_path / "control"
    control.mkdir()
    (control / "broken").touch()
    data = _items(tmp_path / "items.jsonl", 1200)
    params = {"control": str(control), "bad": 777}
    run_id = _submit(server, "mapping-continue", data, params)
    page.goto(f"{server.url}runs/{run_id}/")
    page.wait_for_selector("#run-state.state-succeeded")
    panel = "#map-check"
    assert page.inner_text(f"{panel} .map-items") == "1,200 of 1,200 items, 1 failed"
    assert page.inner_text(f"{panel} .map-failed-batch") == (
        "Batch 2 (items 501 to 1,000)\nitem 777: ValueError: cannot check item 777"
    )
    (control / "broken").unlink()
    page.click("#retry-batches")
    page.wait_for_selector("#messages li")
    assert page.inner_text("#messages li") == (
        "Queued again: 1 failed batch is retried, and only those."
    )
    page.wait_for_selector("#run-state.state-succeeded")
    assert page.inner_text(f"{panel} .map-items") == "1,200 of 1,200 items"
    assert page.is_hidden(f"{panel} .map-failed")
    assert page.query_selector("#retry-batches") is None
