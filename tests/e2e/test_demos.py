"""The three demos of `gristmill serve` (docs/demos/) end to end: with `gristmill run`, through
the API of a real server with its worker, and from the form in a real browser."""

from __future__ import annotations

import csv
import http.server
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import service_absent
from tests.e2e.conftest import TEMPLATES, Server, _clean_env, kill_server, start_server
from tests.integration.conftest import _drop_postgres, wait_until

EXAMPLES = Path(__file__).parents[2] / "examples" / "demos"
DEMOS = "gristmill.demo.pipelines"


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def demo_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """`gristmill serve` offering the demo pipelines, with one worker, on SQLite and on a fresh
    PostgreSQL database."""
    database_url = None
    if request.param == "postgres":
        database_url, reason = TEMPLATES.postgres_database()
        if not database_url:
            service_absent(reason)
    running = start_server(
        tmp_path_factory.mktemp(f"demos-{request.param}"),
        database_url,
        pipelines=(DEMOS,),
        settings={"GRISTMILL_FETCH_ALLOW": "127.0.0.0/8"},  # URL inputs from examples()
        migrated=True,
    )
    yield running
    kill_server(running.process)
    if database_url:
        _drop_postgres(database_url)


@pytest.fixture(scope="module")
def browser(chromium: Any) -> Any:
    """The test process's Chromium (:func:`tests.e2e.conftest.chromium`)."""
    return chromium


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    opened = context.new_page()
    opened.set_default_timeout(30_000)
    yield opened
    context.close()


@pytest.fixture(scope="module")
def examples() -> Iterator[str]:
    """The example files served over HTTP on a free port; its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, directory=str(EXAMPLES), **kwargs)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def gristmill_run(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`gristmill run ARGS`; its log (stderr) then its results (stdout) in ``stdout``."""
    return subprocess.run(
        [sys.executable, "-m", "gristmill", "run", *args],
        env=_clean_env(GRISTMILL_DATA_DIR=str(tmp_path / "data")),
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=120,
    )


def submit(server: Server, pipeline: str, files: list[Path], params: dict[str, Any]) -> str:
    with server.client() as client:
        response = client.post(
            f"/api/v1/pipelines/{pipeline}/runs",
            files=[("files", (path.name, path.read_bytes())) for path in files],
            data={"params": json.dumps(params)},
        )
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def finished(server: Server, run_id: str) -> dict[str, Any]:
    """The run's results once it has ended; it must have succeeded."""
    with server.client() as client:

        def ended() -> dict[str, Any] | None:
            status = client.get(f"/api/v1/runs/{run_id}").json()
            return status if status["state"] in ("succeeded", "failed", "cancelled") else None

        status = wait_until(ended, timeout=90, message=f"run {run_id} did not end")
        assert status["state"] == "succeeded", status["error"]
        results = client.get(f"/api/v1/runs/{run_id}/results").json()
        outputs = client.get(f"/api/v1/runs/{run_id}/outputs").json()
    steps = {step["name"]: step for step in results["steps"]}
    return {"steps": steps, "outputs": {o["name"]: o for o in outputs}}


def download(server: Server, url: str) -> bytes:
    with server.client() as client:
        response = client.get(url)
    assert response.status_code == 200
    return response.content


# -- gristmill run ----------------------------------------------------------------------------


def test_the_tools_demo_runs_with_gristmill_run(tmp_path: Path) -> None:
    ran = gristmill_run(
        tmp_path, "command-line-tools", str(EXAMPLES / "access.log"), "--param", "top=3"
    )
    assert ran.returncode == 0, ran.stdout
    assert "402 lines read, 400 requests, 2 left out" in ran.stdout
    assert "line 59 is not a log line, left out" in ran.stdout
    assert "top_paths     129 /\n" in ran.stdout
    assert "top_paths      65 /api/runs\n" in ran.stdout
    assert "count_errors 18\n" in ran.stdout


def test_the_products_demo_runs_with_gristmill_run(tmp_path: Path) -> None:
    ran = gristmill_run(tmp_path, "file-products", str(EXAMPLES / "measurements.csv"))
    assert ran.returncode == 0, ran.stdout
    assert "line 31 left out: the temperature is out of range" in ran.stdout
    assert "96 rows kept, 4 left out" in ran.stdout
    assert "output tables/cleaned.csv:" in ran.stdout
    assert "output plots/temperature.png:" in ran.stdout


def test_the_checker_demo_runs_with_gristmill_run(tmp_path: Path) -> None:
    ran = gristmill_run(tmp_path, "data-checker", str(EXAMPLES / "grants.json"))
    assert ran.returncode == 0, ran.stdout
    assert "ValidateSchema 6 items checked, 4 invalid, 4 errors" in ran.stdout
    assert "FieldStatistics 6 items, 9 fields, 1 additional" in ran.stdout
    assert "output data.xlsx:" in ran.stdout


def test_a_bad_parameter_of_a_demo_is_refused_by_gristmill_run(tmp_path: Path) -> None:
    ran = gristmill_run(
        tmp_path, "data-checker", str(EXAMPLES / "grants.json"), "--param", "schema_name=nope"
    )
    assert ran.returncode != 0
    assert "schema_name" in ran.stdout
    assert "Traceback" not in ran.stdout


# -- the API, with the server's worker --------------------------------------------------------


def test_the_tools_demo_through_the_api(demo_server: Server) -> None:
    run_id = submit(demo_server, "command-line-tools", [EXAMPLES / "access.log"], {"top": 2})
    run = finished(demo_server, run_id)

    top = run["steps"]["top_paths"]["context"]
    assert top["command"] == ["head", "2", "rank_paths/ranked.txt"]
    assert top["stdout_tail"] == "    129 /\n     65 /api/runs"
    assert "argv" not in top  # staff only
    assert run["steps"]["count_errors"]["context"]["stdout_tail"] == "18"
    ranked = download(demo_server, run["outputs"]["ranked.txt"]["url"]).decode()
    assert ranked.splitlines()[2] == "     57 /blog"
    assert sorted(run["outputs"]) == [
        "counts.txt",
        "paths.txt",
        "ranked.txt",
        "sorted.txt",
        "statuses.txt",
    ]


def test_no_error_status_is_a_warning_of_the_tools_demo_not_a_failure(
    demo_server: Server,
) -> None:
    run_id = submit(
        demo_server, "command-line-tools", [EXAMPLES / "access.log"], {"errors": "^418$"}
    )
    run = finished(demo_server, run_id)
    counted = run["steps"]["count_errors"]["context"]
    assert (counted["exit_code"], counted["stdout_tail"]) == (1, "0")
    assert counted["warnings"] == ["`grep` exited with code 1"]


def test_the_products_demo_through_the_api(demo_server: Server) -> None:
    run_id = submit(
        demo_server, "file-products", [EXAMPLES / "measurements.csv"], {"highest": 10.0}
    )
    run = finished(demo_server, run_id)

    cleaned = run["steps"]["CleanMeasurements"]["context"]
    left_out = sum(r["rows"] for r in cleaned["left out"])
    assert cleaned["summary"] == f"{100 - left_out} of 100 rows kept, in tables/cleaned.csv"
    assert {"reason": "a value is missing", "rows": 1} in cleaned["left out"]
    assert cleaned["stations"] == "north, south"
    table = download(demo_server, run["outputs"]["tables/cleaned.csv"]["url"]).decode()
    rows = list(csv.DictReader(io.StringIO(table)))
    assert len(rows) == 100 - left_out
    assert max(float(row["temperature_c"]) for row in rows) <= 10.0
    plot = run["outputs"]["plots/temperature.png"]
    assert plot["media_type"] == "image/png"
    assert download(demo_server, plot["url"]).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_checker_demo_through_the_api_converts_csv_to_json(demo_server: Server) -> None:
    run_id = submit(demo_server, "data-checker", [EXAMPLES / "grants.csv"], {})
    run = finished(demo_server, run_id)

    checked = run["steps"]["ValidateSchema"]["context"]
    assert checked["summary"] == (
        "4 items in SpreadsheetToJson/data.json: 2 valid, 2 with 2 errors (2 kinds)"
    )
    assert [e["error"] for e in checked["errors"]] == [
        "type at $.amount",
        "required at $.recipient",
    ]
    fields = run["steps"]["FieldStatistics"]["context"]
    assert fields["additional_fields"] == [{"field": "$.notes", "count": 1}]
    converted = json.loads(download(demo_server, run["outputs"]["data.json"]["url"]))
    assert converted[0] == {
        "id": "G-101",
        "title": "Play area",
        "amount": 3000,
        "currency": "GBP",
        "recipient": {"name": "Parkside Parents", "country": "GB"},
    }


def test_the_checker_demo_takes_a_schema_sent_as_a_second_file_and_a_sample(
    demo_server: Server, tmp_path: Path
) -> None:
    schema = tmp_path / "mine.json"
    schema.write_text(json.dumps({"type": "object", "required": ["id", "budget"]}))
    run_id = submit(demo_server, "data-checker", [EXAMPLES / "grants.json", schema], {"sample": 3})
    run = finished(demo_server, run_id)

    checked = run["steps"]["ValidateSchema"]["context"]
    assert checked["summary"] == "3 items in Sample/sample.json: 0 valid, 3 with 3 errors (1 kind)"
    assert checked["errors"][0]["error"] == "required at $"
    assert sorted(run["outputs"]) == ["data.xlsx", "errors.jsonl", "sample.json"]


def test_the_checker_demo_takes_pasted_json(demo_server: Server) -> None:
    with demo_server.client() as client:
        response = client.post(
            "/api/v1/pipelines/data-checker/runs",
            json={
                "params": {"schema_name": "people"},
                "inputs": [{"kind": "json", "value": [{"id": "p1", "name": "Ada", "age": 36}]}],
            },
        )
    assert response.status_code == 201, response.text
    run = finished(demo_server, response.json()["id"])
    assert run["steps"]["ValidateSchema"]["context"]["summary"].endswith(
        "1 valid, 0 with 0 errors (0 kinds)"
    )
    additional = run["steps"]["FieldStatistics"]["context"]["additional_fields"]
    assert additional == [{"field": "$.age", "count": 1}]
    assert "data.xlsx" in run["outputs"]


def test_the_checker_demo_reads_xlsx_and_pasted_csv(demo_server: Server, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["sku", "name", "price", "colour"])
    sheet.append(["A-1", "Lamp", 12.5, "red"])
    sheet.append(["b 2", "Desk", 0, None])
    workbook = tmp_path / "products.xlsx"
    book.save(workbook)
    run = finished(
        demo_server, submit(demo_server, "data-checker", [workbook], {"schema_name": "products"})
    )
    checked = run["steps"]["ValidateSchema"]["context"]
    assert [e["error"] for e in checked["errors"]] == [
        "exclusiveMinimum at $.price",
        "pattern at $.sku",
    ]
    fields = run["steps"]["FieldStatistics"]["context"]
    assert fields["additional_fields"] == [{"field": "$.colour", "count": 1}]
    converted = json.loads(download(demo_server, run["outputs"]["data.json"]["url"]))
    assert converted == [
        {"sku": "A-1", "name": "Lamp", "price": 12.5, "colour": "red"},
        {"sku": "b 2", "name": "Desk", "price": 0},
    ]

    with demo_server.client() as client:
        response = client.post(
            "/api/v1/pipelines/data-checker/runs",
            json={"inputs": [{"kind": "text", "text": (EXAMPLES / "grants.csv").read_text()}]},
        )
    assert response.status_code == 201, response.text
    pasted = finished(demo_server, response.json()["id"])
    assert pasted["steps"]["DetectFormat"]["context"]["summary"].endswith("is CSV.")
    assert pasted["steps"]["ValidateSchema"]["context"]["summary"].startswith("4 items")


def test_a_text_that_is_no_log_fails_the_tools_demo_with_a_message(demo_server: Server) -> None:
    with demo_server.client() as client:
        response = client.post(
            "/api/v1/pipelines/command-line-tools/runs",
            json={"inputs": [{"kind": "text", "text": "hello\nworld\n"}]},
        )
        assert response.status_code == 201, response.text
        run_id = response.json()["id"]
        status = wait_until(
            lambda: (s := client.get(f"/api/v1/runs/{run_id}").json())["state"] == "failed" and s,
            timeout=90,
        )
    assert status["error"]["message"] == (
        "command `awk` failed with exit code 1\n"
        "no line of the input is a request of a web server's log"
    )


def test_the_checker_demo_reads_json_lines_by_url(demo_server: Server, examples: str) -> None:
    with demo_server.client() as client:
        response = client.post(
            "/api/v1/pipelines/data-checker/runs",
            json={"inputs": [{"kind": "url", "url": examples + "grants.jsonl"}]},
        )
    assert response.status_code == 201, response.text
    run = finished(demo_server, response.json()["id"])
    assert run["steps"]["DetectFormat"]["context"]["summary"] == "grants.jsonl is JSON Lines."
    assert run["steps"]["ValidateSchema"]["context"]["summary"] == (
        "6 items in grants.jsonl: 2 valid, 4 with 4 errors (4 kinds)"
    )
    assert "data.xlsx" in run["outputs"]


def test_a_file_the_checker_cannot_read_is_refused_with_a_message(demo_server: Server) -> None:
    with demo_server.client() as client:
        response = client.post(
            "/api/v1/pipelines/data-checker/runs",
            files=[("files", ("notes.pdf", b"%PDF-1.4 not data"))],
        )
    assert response.status_code == 400
    assert "notes.pdf" in response.json()["error"]["message"]


# -- the browser: each demo's example submitted from its form ---------------------------------


def test_the_tools_demo_from_the_form(demo_server: Server, page: Any) -> None:
    page.goto(f"{demo_server.url}pipelines/command-line-tools/")
    page.set_input_files("#id_files", str(EXAMPLES / "access.log"))
    page.fill("#id_top", "2")
    page.click("#submit-button")
    page.wait_for_selector("#results")
    text = page.text_content("#results")
    assert "129 /" in text
    assert "65 /api/runs" in text
    assert "57 /blog" not in text  # only the top 2
    assert page.locator("a.output", has_text="ranked.txt").count() == 1


def test_the_products_demo_from_the_form(demo_server: Server, page: Any) -> None:
    page.goto(f"{demo_server.url}pipelines/file-products/")
    page.set_input_files("#id_files", str(EXAMPLES / "measurements.csv"))
    page.click("#submit-button")
    page.wait_for_selector("#results")
    text = page.text_content("#results")
    assert "the temperature is out of range" in text
    assert "96 of 100 rows kept, in tables/cleaned.csv" in text
    assert "plots/temperature.png (PNG): 48 points of north, 48 points of south" in text
    assert page.locator("a.output", has_text="cleaned.csv").count() == 1
    assert page.locator("a.output", has_text="temperature.png").count() == 1


def test_the_checker_demo_from_the_form_with_its_own_results_page(
    demo_server: Server, page: Any
) -> None:
    page.goto(f"{demo_server.url}pipelines/data-checker/")
    page.set_input_files("#id_files", str(EXAMPLES / "grants.json"))
    page.select_option("#id_schema_name", "grants")
    page.click("#submit-button")
    page.wait_for_selector("#checker-verdict")
    verdict = page.text_content("#checker-verdict")
    assert "6 items in grants.json: 2 valid, 4 with 4 errors (4 kinds)" in verdict
    assert "4 kinds of error" in verdict
    results = page.text_content("#results")
    assert "type at $.amount" in results
    assert "$.notes" in results  # an additional field
    assert page.locator("a.output", has_text="data.xlsx").count() == 1
