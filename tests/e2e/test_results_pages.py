"""Results pages in a real browser: a pipeline's own page template (from the folder it names)
and a step template (from the ``templates`` folder beside its module) are rendered with the
documented context; a big result by the default rendering makes a page of bounded height with
nothing wider than the window."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e import conftest
from tests.e2e.test_browser import browser, page
from tests.integration.conftest import wait_until

__all__ = ["browser", "page"]  # the fixtures, shared with the other browser tests

RESULTS_PIPELINES = str(Path(__file__).with_name("results_pipelines.py"))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[conftest.Server]:
    data_dir = tmp_path_factory.mktemp("results-pages")
    running = conftest.start_server(
        data_dir, pipelines=(conftest.PIPELINES, RESULTS_PIPELINES), migrated=True
    )
    yield running
    conftest.kill_server(running.process)


def finished_run(server: conftest.Server, pipeline: str) -> dict[str, Any]:
    with server.client() as http:
        run: dict[str, Any] = http.post(f"api/v1/pipelines/{pipeline}/runs", json={}).json()
        wait_until(
            lambda: http.get(run["status_url"]).json()["state"] == "succeeded",
            message=f"the {pipeline} run to succeed",
        )
    return run


def test_a_pipelines_page_template_and_step_templates_are_rendered(
    server: conftest.Server, page: Any
) -> None:
    run = finished_run(server, "checker")
    page.goto(server.url + run["url"].lstrip("/"))
    assert page.text_content("#results-heading").strip() == f"Checked: {run['id']}"
    verdict = " ".join(page.text_content("#verdict").split())
    assert verdict == "Not valid: 2 kinds of error; 5000 items, 2 steps."
    assert page.get_attribute("#verdict", "data-staff") == "no"
    assert page.query_selector("#staff-note") is None  # a staff-only key, hidden
    kinds = [k.strip() for k in page.locator("#error-kinds li").all_text_contents()]
    assert kinds == ["is not of type 'string' (4812)", "'title' is a required property (2)"]
    assert page.text_content("#errors-step").strip() == f"validate of {run['id']}"
    assert page.text_content("#stats-beside").strip() == "5000 items in 12 fields"
    # The rest of the run page is still gristmill's.
    assert page.text_content("#run-state").strip() == "succeeded"
    assert page.query_selector("#outputs") is not None


def test_a_big_result_makes_a_bounded_page_without_horizontal_overflow(
    server: conftest.Server, page: Any
) -> None:
    run = finished_run(server, "big-result")
    page.set_viewport_size({"width": 1280, "height": 800})
    page.goto(server.url + run["url"].lstrip("/"))
    height = page.evaluate("document.documentElement.scrollHeight")
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.evaluate("window.innerWidth")
    assert height < 5000, f"the page is {height} px high"
    assert width <= viewport, f"the page is {width} px wide in a {viewport} px window"
    result = page.locator("#result-big")
    # Groups with a count and a few examples; the others counted.
    groups = result.locator(".groups > .group")
    assert groups.count() == 10
    first = " ".join(groups.first.text_content().split())
    assert first.startswith("1,000 kind kind-0 message error number 0")
    assert "… and 997 more like these" in first
    assert result.locator(".groups > details > summary").text_content() == "… and 90 more groups"
    # The fifty-column table scrolls inside its own box.
    row = result.locator("table.kv > tbody > tr").filter(
        has=page.locator("th", has_text=re.compile("^table$"))
    )
    table = row.locator("table.rows").first
    assert table.evaluate("t => t.scrollWidth > t.clientWidth")
    assert table.locator("thead th").count() == 50
    assert table.locator("tbody tr").count() == 20
    summaries = result.locator("summary").all_text_contents()
    assert "… and 280 more rows" in summaries
    assert "… and 4,812 more" in summaries
    assert "… and 99,700 more characters" in summaries
    # Opening the rest of the table still keeps it inside the window.
    result.locator("summary", has_text="more rows").click()
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport
