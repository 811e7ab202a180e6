"""A pipeline of library tasks on real workers: a spreadsheet checked against a schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import openpyxl

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import submit, wait
from gristmill.executors.inline import run_inline
from tests.integration.conftest import Workers

if TYPE_CHECKING:
    from django.test import Client


def workbook(path: Path, rows: int) -> Path:
    book = openpyxl.Workbook(write_only=True)
    sheet = book.create_sheet("data")
    sheet.append(["id", "parties/0/name", "parties/1/name", "note"])
    for number in range(rows):
        name = number if number % 10 == 0 else f"party {number}"  # every tenth is no string
        sheet.append([f"id-{number}", name, "other", "extra" if number % 4 == 0 else None])
    book.save(path)
    return path


def test_a_spreadsheet_is_converted_sampled_validated_and_counted_by_workers(
    service: Service, workers: Workers, tmp_path: Path
) -> None:
    data = workbook(tmp_path / "parties.xlsx", 1000)
    workers.start(2)

    status = wait(submit("library-check", [data], service=service), timeout=60, service=service)

    assert status.state == RunState.SUCCEEDED, status.error
    assert status.result("DetectFormat")["format"] == "xlsx"
    assert status.result("SpreadsheetToJson")["rows"] == 1000
    assert status.steps[2].state.value == "skipped"  # no sample asked for
    checked = status.result("ValidateSchema")
    assert (checked["items"], checked["invalid_items"]) == (1000, 100)
    assert [(g["keyword"], g["path"], g["count"]) for g in checked["groups"]] == [
        ("type", "$.parties[*].name", 100)
    ]
    fields = status.result("FieldStatistics")
    assert [(a["path"], a["count"]) for a in fields["additional_fields"]] == [("$.note", 250)]
    names = sorted(output.name for output in status.outputs)
    assert names == ["data.json", "data.xlsx", "errors.jsonl"]
    converted = next(o for o in status.outputs if o.name == "data.json")
    items = json.loads(service.storage.path(converted.path).read_text(encoding="utf-8"))
    assert items[1] == {"id": "id-1", "parties": [{"name": "party 1"}, {"name": "other"}]}


def test_a_sample_of_the_items_is_checked(
    service: Service, workers: Workers, tmp_path: Path
) -> None:
    data = workbook(tmp_path / "parties.xlsx", 500)
    workers.start(1)

    run_id = submit("library-check", [data], {"sample": 50}, service=service)
    status = wait(run_id, timeout=60, service=service)

    assert status.state == RunState.SUCCEEDED, status.error
    assert status.result("Sample") == {
        "file": "SpreadsheetToJson/data.json",
        "mode": "random",
        "kept": 50,
        "read": 500,
    }
    assert status.result("ValidateSchema")["items"] == 50
    assert status.result("ValidateSchema")["file"] == "Sample/sample.json"


def test_broken_json_fails_the_run_with_its_line_and_column(
    service: Service, workers: Workers, tmp_path: Path
) -> None:
    data = tmp_path / "broken.json"
    data.write_text('[{"id": "a"},\n {"id": "b",,}]', encoding="utf-8")
    workers.start(1)

    status = wait(submit("library-check", [data], service=service), timeout=60, service=service)

    assert status.state == RunState.FAILED
    assert (
        status.error == "broken.json is not valid JSON: Unexpected symbol ',' at line 2 column 13"
    )


def test_the_results_page_shows_each_library_step_readably_without_server_paths(
    service: Service, web: Client, tmp_path: Path
) -> None:
    data = tmp_path / "parties.json"
    items = [{"id": f"p{n}", "parties": [{"name": n}], "note": "x"} for n in range(300)]
    data.write_text(json.dumps(items), encoding="utf-8")
    run_id = submit("library-check", [data], service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED

    response = web.get(f"/runs/{run_id}/")

    assert response.status_code == 200
    text = response.content.decode()
    assert "parties.json is JSON." in text
    assert "300 items in parties.json: 0 valid, 300 with 300 errors (1 kind)" in text
    assert "type at $.parties[*].name" in text
    assert str(service.settings.data_dir) not in text
    assert str(tmp_path) not in text
