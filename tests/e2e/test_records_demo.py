"""The records demo as a user meets it: `gristmill serve` with two workers, the demo's
datasets submitted from the form in a real browser, the report with examples, the comparison
with the previous run, a filtered run of the failing items from the run page; and the same
from the command line."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.demo import generate
from gristmill.demo.records import CHECKS
from tests.e2e.conftest import Server, _clean_env, kill_server, start_server
from tests.e2e.test_browser import browser, page  # noqa: F401 - fixtures

DATA = Path(generate.__file__).parent / "data"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`gristmill serve` offering the demo pipelines, with two workers, on SQLite."""
    running = start_server(
        tmp_path_factory.mktemp("demo"),
        workers=2,
        pipelines=("gristmill.demo.pipelines",),
        migrated=True,
    )
    yield running
    kill_server(running.process)


def run_id_of(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def api(server: Server, path: str) -> Any:
    answer = httpx.get(f"{server.url}api/v1{path}", timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_the_demo_in_the_browser_report_comparison_and_a_filtered_run(
    demo: Server,
    page: Any,  # noqa: F811
) -> None:
    page.goto(f"{demo.url}pipelines/records-check/")
    page.set_input_files("#id_files", str(DATA / "records.jsonl"))
    page.click("#submit-button")
    page.wait_for_url("**/runs/*/")
    first = run_id_of(page.url)
    page.wait_for_selector("#results", timeout=120_000)
    report = page.text_content("#result-RecordsReport") or ""
    assert "2000 records checked" in report
    assert "no previous run of this source to compare with" in report
    assert "negative-amount" in report  # the examples of each problem
    checked = api(demo, f"/runs/{first}/results")["steps"][0]
    assert checked["name"] == "check_records"
    assert (checked["context"]["items"], checked["context"]["items_done"]) == (2000, 2000)
    summary = api(demo, f"/runs/{first}/results")

    # A month later: the same source, compared with the first run named in the form.
    page.goto(f"{demo.url}pipelines/records-check/")
    page.set_input_files("#id_files", str(DATA / "later" / "records.jsonl"))
    page.click("details.ancestor summary")
    page.fill("#id_ancestor", first)
    page.click("#submit-button")
    page.wait_for_url("**/runs/*/")
    second = run_id_of(page.url)
    page.wait_for_selector("#results", timeout=120_000)
    assert first in (page.text_content("#run-ancestor") or "")
    report = page.text_content("#result-RecordsReport") or ""
    assert f"since run {first}: 60 added" in report
    assert "better" in report or "worse" in report

    # The failing items of one check, from the run page, by the same pipeline.
    page.click("#filtered summary")
    page.select_option("#filtered-finding", "negative-amount")
    page.click("#filtered-submit")
    page.wait_for_url(lambda url: second not in url and "/runs/" in url)
    filtered = run_id_of(page.url)
    page.wait_for_selector("#results", timeout=120_000)
    assert page.text_content("#run-state").strip() == "succeeded"
    assert second in (page.text_content("#run-filtered-from") or "")
    results = api(demo, f"/runs/{second}/results")
    checks = _checks(results)
    assert f"{checks['negative-amount']} records checked" in (
        page.text_content("#result-RecordsReport") or ""
    )
    assert (
        _checks(api(demo, f"/runs/{filtered}/results"))["negative-amount"]
        == checks["negative-amount"]
    )
    assert summary  # the first run's results stay readable


def _report(results: Any) -> dict[str, Any]:
    """The report's page (its context()) in the API's results."""
    for step in results["steps"]:
        if step["name"] == "RecordsReport":
            return dict(step["context"])
    raise AssertionError(f"no report in {json.dumps(results)[:500]}")


def _checks(results: Any) -> dict[str, int]:
    """Items failing each check, by the check's kind, from the report's page."""
    kinds = {what: kind for kind, what in CHECKS.items()}
    return {kinds[row["check"]]: row["failed"] for row in _report(results)["checks"]}


def cli(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args, "--server", server.url],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=180,
    )


def test_a_filtered_run_from_the_command_line(demo: Server, tmp_path: Path) -> None:
    source = cli(
        demo, "submit", "records-check", str(DATA / "records.jsonl"), "--wait", cwd=tmp_path
    )
    assert source.returncode == 0, source.stderr
    run_id = source.stdout.splitlines()[0]
    checks = _checks(api(demo, f"/runs/{run_id}/results"))

    by_finding = cli(
        demo,
        "submit",
        "records-check",
        "--from-run",
        run_id,
        "--with-finding",
        "unknown-status",
        "--wait",
        cwd=tmp_path,
    )
    assert by_finding.returncode == 0, by_finding.stderr
    new = by_finding.stdout.splitlines()[0]
    assert _checks(api(demo, f"/runs/{new}/results"))["unknown-status"] == checks["unknown-status"]

    by_path = cli(
        demo,
        "submit",
        "records-check",
        "--from-run",
        run_id,
        "--step",
        "check_records",
        "--where",
        "$.buyer.id=GB-BUY-0007",
        "--wait",
        cwd=tmp_path,
    )
    assert by_path.returncode == 0, by_path.stderr
    lines = (DATA / "records.jsonl").read_text(encoding="utf-8").splitlines()
    expected = sum(1 for line in lines if json.loads(line)["buyer"]["id"] == "GB-BUY-0007")
    new = by_path.stdout.splitlines()[0]
    report = _report(api(demo, f"/runs/{new}/results"))
    assert report["summary"].startswith(f"{expected} records checked")
    assert expected > 0

    refused = cli(
        demo, "submit", "records-check", "--from-run", run_id, "--where", "buyer=1", cwd=tmp_path
    )
    assert refused.returncode != 0
    assert 'a path starts with "$"' in refused.stderr
    usage = cli(demo, "submit", "records-check", "--from-run", run_id, cwd=tmp_path)
    assert usage.returncode == 2
    assert "--where PATH=VALUE or --with-finding KIND" in usage.stderr
