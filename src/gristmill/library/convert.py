"""Spreadsheet → JSON and JSON → spreadsheet, nested data flattened to columns and back.

Both use the convention of :mod:`gristmill.library.flattening` (column names are paths such as
``parties/0/name``), so that JSON → spreadsheet → JSON gives back the same items. Both stream:
XLSX is read with openpyxl's read-only mode and written with its write-only mode; JSON is read
with ijson and written item by item. JSON → spreadsheet reads its data twice, first to learn
the columns, then to write the rows, so memory holds the column names, never the items.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.errors import DefinitionError, TaskError
from gristmill.library.base import LibraryTask
from gristmill.library.flattening import flatten, to_cell
from gristmill.library.reading import ItemReader, judge

XLSX_MAX_COLUMNS = 16_384
"""The most columns an XLSX sheet can have."""


class SpreadsheetToJson(LibraryTask):
    """Convert a CSV or XLSX file (one item a row) to ``data.json``, a JSON array of items.

    Not applicable (skipped) to data that is not a spreadsheet, so a pipeline can list it
    first and later steps read ``source=("SpreadsheetToJson",)`` or, when it was skipped, the
    input itself.
    """

    title = "Spreadsheet to JSON"
    description = "Converts a CSV or XLSX spreadsheet to JSON, rebuilding nested data."
    packages = ("openpyxl",)

    def __init__(self, *, sheet: str | None = None, output: str = "data.json", **options: Any):
        self.sheet, self.output_name = sheet, output
        super().__init__(sheet=sheet, output=output, **options)

    def is_applicable(self, run: RunContext) -> bool:
        if self.sources:
            return True
        return bool(run.inputs) and judge(run.input.name, run.input.path) in ("csv", "xlsx")

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        file = self.data(run)
        if file.format not in ("csv", "xlsx"):
            return {"file": file.name, "converted": False, "rows": 0}
        reader = ItemReader(file, sheet=self.sheet)
        path = run.workdir / self.output_name
        rows = 0
        with (
            run.stage("converting rows"),
            path.open("w", encoding="utf-8") as out,
            self.nesting(reader),
        ):
            out.write("[")
            for index, item in self.each_item(run, reader):
                out.write(",\n" if index else "\n")
                json.dump(item, out, ensure_ascii=False)
                rows += 1
            out.write("\n]\n")
        run.output(path, media_type="application/json")
        run.log(f"{rows:,} rows converted to JSON")
        return {"file": file.name, "converted": True, "rows": rows, "output": self.output_name}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict) or not result.get("converted"):
            return {"summary": "Nothing to convert."}
        return {"summary": f"{result['rows']:,} rows of {result['file']} converted to JSON."}


class JsonToSpreadsheet(LibraryTask):
    """Convert JSON (or JSON Lines) items to a spreadsheet, ``data.xlsx`` or ``data.csv``,
    one row an item; nested data flattened to columns (see the module's docstring)."""

    title = "JSON to spreadsheet"
    description = "Converts the items to a spreadsheet, one row an item."
    packages = ("openpyxl",)

    def __init__(self, *, format: str = "xlsx", output: str | None = None, **options: Any):
        if format not in ("xlsx", "csv"):
            raise DefinitionError(f"format must be 'xlsx' or 'csv', not {format!r}")
        self.format, self.output_name = format, output or f"data.{format}"
        super().__init__(format=format, output=self.output_name, **options)

    def is_applicable(self, run: RunContext) -> bool:
        if self.sources:
            return True
        return bool(run.inputs) and judge(run.input.name, run.input.path) in ("json", "jsonl")

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        file = self.data(run)
        if file.format not in ("json", "jsonl"):
            return {"file": file.name, "converted": False, "rows": 0}
        columns: dict[str, None] = {}
        reader = ItemReader(file, items=self.items)
        with run.stage("finding the columns"), self.nesting(reader):
            for _, item in self.each_item(run, reader):
                for column, _value in flatten(item):
                    columns.setdefault(column, None)
                if self.format == "xlsx" and len(columns) > XLSX_MAX_COLUMNS:
                    raise TaskError(
                        f"{file.name} has more than {XLSX_MAX_COLUMNS:,} fields once flattened, "
                        "more than an XLSX sheet can hold; convert to CSV instead"
                    )
        header = list(columns)
        path = run.workdir / self.output_name
        reader = ItemReader(file, items=self.items)
        with run.stage("writing rows"), self.nesting(reader):
            rows = (
                self._write_xlsx(run, reader, header, path)
                if self.format == "xlsx"
                else self._write_csv(run, reader, header, path)
            )
        run.output(path)
        run.log(f"{rows:,} items written as {len(header):,} columns")
        return {
            "file": file.name,
            "converted": True,
            "rows": rows,
            "columns": len(header),
            "output": self.output_name,
        }

    def _write_csv(self, run: RunContext, reader: ItemReader, header: list[str], path: Path) -> int:
        rows = 0
        with path.open("w", encoding="utf-8", newline="") as out:
            writer = csv.writer(out)
            writer.writerow(header)
            position = {column: number for number, column in enumerate(header)}
            for _, item in self.each_item(run, reader):
                row: list[Any] = [""] * len(header)
                for column, value in flatten(item):
                    row[position[column]] = to_cell(value, native=False)
                writer.writerow(row)
                rows += 1
        return rows

    def _write_xlsx(
        self, run: RunContext, reader: ItemReader, header: list[str], path: Path
    ) -> int:
        import openpyxl
        from openpyxl.cell import WriteOnlyCell

        book = openpyxl.Workbook(write_only=True)
        sheet = book.create_sheet("data")
        sheet.append(header)
        position = {column: number for number, column in enumerate(header)}
        rows = 0
        for _, item in self.each_item(run, reader):
            row: list[Any] = [None] * len(header)
            for column, value in flatten(item):
                cell = WriteOnlyCell(sheet, value=to_cell(value, native=True))
                if isinstance(cell.value, str):
                    cell.data_type = "s"  # text that starts with "=" stays text, not a formula
                row[position[column]] = cell
            sheet.append(row)
            rows += 1
        book.save(path)
        return rows

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict) or not result.get("converted"):
            return {"summary": "Nothing to convert."}
        return {
            "summary": f"{result['rows']:,} items of {result['file']} as {result['columns']:,} "
            f"columns in {result['output']}."
        }
