"""Spreadsheets convert to JSON and back, streamed, without losing nested data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from gristmill import TaskError
from gristmill.library import JsonToSpreadsheet, SpreadsheetToJson
from tests.unit.library.conftest import Runner
from tests.unit.library.test_flattening import AWKWARD


@pytest.mark.parametrize("kind", ["xlsx", "csv"])
def test_json_to_a_spreadsheet_and_back_gives_the_same_items(
    run_task: Runner, tmp_path: Path, kind: str
) -> None:
    source = tmp_path / "items.json"
    source.write_text(json.dumps(AWKWARD), encoding="utf-8")

    written, run = run_task(JsonToSpreadsheet(format=kind), source)
    table = tmp_path / f"items.{kind}"
    table.write_bytes(run.outputs[0].path.read_bytes())
    (run.workdir / run.outputs[0].name).unlink()
    read, back = run_task(SpreadsheetToJson(), table)

    assert written["rows"] == read["rows"] == len(AWKWARD)
    assert json.loads(back.outputs[0].path.read_text(encoding="utf-8")) == AWKWARD


def test_xlsx_keeps_numbers_and_text_as_such(run_task: Runner, tmp_path: Path) -> None:
    source = tmp_path / "items.json"
    source.write_text(json.dumps([{"n": 3, "s": "=SUM(A1)", "t": True}]), encoding="utf-8")

    _, run = run_task(JsonToSpreadsheet(), source)

    sheet = openpyxl.load_workbook(run.outputs[0].path).worksheets[0]
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["n", "s", "t"],
        [3, "=SUM(A1)", True],
    ]
    assert sheet["B2"].data_type == "s"


def test_a_spreadsheet_with_nested_columns_becomes_nested_json(
    run_task: Runner, tmp_path: Path
) -> None:
    table = tmp_path / "t.csv"
    table.write_text("id,parties/0/name,parties/1/name,score\nA,x,y,1.5\nB,z,,\n")

    _, run = run_task(SpreadsheetToJson(), table)

    items: list[Any] = json.loads(run.outputs[0].path.read_text(encoding="utf-8"))
    assert items == [
        {"id": "A", "parties": [{"name": "x"}, {"name": "y"}], "score": 1.5},
        {"id": "B", "parties": [{"name": "z"}]},
    ]


def test_conflicting_columns_name_the_row(run_task: Runner, tmp_path: Path) -> None:
    table = tmp_path / "t.csv"
    table.write_text("a,a/b\n1,\n2,3\n")

    with pytest.raises(TaskError) as error:
        run_task(SpreadsheetToJson(), table)

    assert str(error.value) == "t.csv, line 3: column 'a/b' lies inside a column that has a value"
