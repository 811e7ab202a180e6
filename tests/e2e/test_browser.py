"""The web pages in a real browser: headless Chromium from Debian, driven by Playwright."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_absent
from tests.e2e.conftest import Server

CHROMIUM = os.environ.get("GRISTMILL_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags for a sandboxed, offline machine: no background traffic, no GPU, no first-run UI.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not Path(CHROMIUM).exists():
        service_absent(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_absent("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


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
