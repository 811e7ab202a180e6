"""Library tasks read JSON, JSON Lines, CSV and XLSX, and say where broken data is broken."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import openpyxl
import pytest

from gristmill import TaskError
from gristmill.library import FieldStatistics
from tests.unit.library.conftest import Runner


def items_of(run_task: Runner, path: Path) -> int:
    result, _ = run_task(FieldStatistics(), path)
    return int(result["items"])


def test_items_are_the_elements_of_a_top_level_array(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps([{"a": 1}, {"a": 2}, {"b": "x"}]))
    assert items_of(run_task, path) == 3


def test_items_at_a_dotted_path(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text(json.dumps({"meta": {}, "records": [{"a": 1}, {"a": 2}]}))
    result, _ = run_task(FieldStatistics(items="records"), path)
    assert result["items"] == 2


def test_json_lines_csv_and_xlsx_items(run_task: Runner, tmp_path: Path) -> None:
    lines = tmp_path / "d.jsonl"
    lines.write_text('{"a": 1}\n{"a": 2}\n\n{"a": 3}\n')
    table = tmp_path / "d.csv"
    table.write_text("a,b/0\n1,x\n2,y\n")
    book = openpyxl.Workbook()
    book.active.append(["a", "b"])
    book.active.append([1, "x"])
    book.save(tmp_path / "d.xlsx")
    assert items_of(run_task, lines) == 3
    assert items_of(run_task, table) == 2
    assert items_of(run_task, tmp_path / "d.xlsx") == 1


def test_malformed_json_is_named_with_its_line_and_column(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"a": 1},\n {"a": 2, b: 3}]')
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is not valid JSON: Unexpected symbol 'b' at line 2 column 11"


def test_truncated_json_says_where_it_ends(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_text('[{"a": 1},\n {"a": 2')
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is not valid JSON: it ends too early, at line 2 column 9"


def test_malformed_json_lines_name_the_line(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n{"a": 2}\n{"a": }\n')
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == ("d.jsonl is not valid JSON Lines: line 3 column 7: Expecting value")


def test_json_in_another_encoding_is_refused_with_the_place(
    run_task: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    path.write_bytes('[{"a": "ok"},\n {"a": "café"}]'.encode("cp1252"))
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is not UTF-8 text: line 2 column 12"


def test_utf16_text_is_refused(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes('[{"a": 1}]'.encode("utf-16"))
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is UTF-16 or UTF-32 text; save it as UTF-8"


def test_csv_in_another_encoding_is_refused_with_the_place(
    run_task: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "d.csv"
    path.write_bytes("a,b\nx,y\nz,é\n".encode("latin-1"))
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.csv is not UTF-8 text: line 3 column 3"


def test_an_empty_file_is_refused(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b"")
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is empty"


def test_a_truncated_xlsx_is_refused(run_task: Runner, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["a"])
    book.active.append([1])
    whole = tmp_path / "whole.xlsx"
    book.save(whole)
    path = tmp_path / "d.xlsx"
    path.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value).startswith("d.xlsx is not a readable XLSX file: ")


def entity_bomb(path: Path, whole: Path) -> None:
    """A copy of the workbook ``whole`` whose sheet declares a billion laughs."""
    entities = '<!ENTITY lol0 "lol">' + "".join(
        f'<!ENTITY lol{n} "{f"&lol{n - 1};" * 10}">' for n in range(1, 10)
    )
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w") as target:
        for entry in source.infolist():
            data = source.read(entry)
            if entry.filename == "xl/worksheets/sheet1.xml":
                data = f"<!DOCTYPE worksheet [{entities}]>".encode() + data
                data = data.replace(b">text<", b">&lol9;<")
            target.writestr(entry, data)


def test_an_entity_expansion_xlsx_is_refused(run_task: Runner, tmp_path: Path) -> None:
    book = openpyxl.Workbook()
    book.active.append(["a"])
    book.active.append(["text"])
    whole = tmp_path / "whole.xlsx"
    book.save(whole)
    path = tmp_path / "d.xlsx"
    entity_bomb(path, whole)
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == (
        "d.xlsx declares XML entities in xl/worksheets/sheet1.xml, which are refused "
        "(entity expansion)"
    )


def test_a_row_with_more_cells_than_columns_is_refused(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.csv"
    path.write_text("a,b\n1,2\n3,4,5\n")
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.csv, line 3: 3 cells, but the first row names 2 columns"


def test_a_format_the_task_does_not_read_is_named(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.zip"
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("a.txt", "x")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value).startswith("d.zip is a ZIP archive; this step reads JSON, ")


def test_json_nested_past_the_limit_is_refused_before_it_is_built(
    run_task: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    depth = 100_000  # built as items, this would take gigabytes
    path.write_bytes(b"[" + b"[" * depth + b"]" * depth + b"]")
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == (
        "d.json nests arrays and objects more than 2,000 levels deep, which is more than can "
        "be checked"
    )


def test_an_item_too_deep_for_the_work_names_the_item(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    deep = "[" * 1500 + "]" * 1500
    path.write_text(f'[{{"a": 1}}, {deep}]')
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json: item 1 is nested too deeply to process"


def test_a_json_line_nested_too_deeply_is_refused(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_text('{"a": 1}\n' + "[" * 100_000 + "]" * 100_000 + "\n")
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value).startswith("d.jsonl line 2 is nested too deeply to read: ")


def test_a_byte_order_mark_is_skipped(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'\xef\xbb\xbf[{"a": 1}, {"a": 2}]')
    assert items_of(run_task, path) == 2


def test_malformed_json_after_a_byte_order_mark_is_placed_right(
    run_task: Runner, tmp_path: Path
) -> None:
    path = tmp_path / "d.json"
    path.write_bytes(b'\xef\xbb\xbf[{"a": 1}, {"a" 2}]')
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == "d.json is not valid JSON: Unexpected symbol '2' at line 1 column 17"


def test_json_lines_with_a_byte_order_mark(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n')
    assert items_of(run_task, path) == 2


def test_a_workbook_whose_shared_text_would_expand_too_far_is_refused(
    run_task: Runner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.library import workbooks

    monkeypatch.setattr(workbooks, "MAX_SHARED_STRINGS", 1000)
    whole = tmp_path / "whole.xlsx"
    openpyxl.Workbook().save(whole)
    path = tmp_path / "d.xlsx"
    with zipfile.ZipFile(whole) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for entry in source.infolist():
            out.writestr(entry, source.read(entry))
        strings = b"<sst>" + b"<si><t>lol</t></si>" * 100 + b"</sst>"
        out.writestr("xl/sharedStrings.xml", strings)
    with pytest.raises(TaskError) as error:
        run_task(FieldStatistics(), path)
    assert str(error.value) == (
        "d.xlsx holds 1,911 bytes of shared text, more than the 1,000 that can be read; "
        "save it as CSV"
    )
