"""Telling a file's type by its content, and which names its content may carry."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest

from gristmill.authoring.sniffing import HEAD_BYTES, describe, from_media_type, matches, sniff


def zipped(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


XLSX = zipped({"[Content_Types].xml": b"<Types/>", "xl/workbook.xml": b"<workbook/>"})
ODS = zipped({"mimetype": b"application/vnd.oasis.opendocument.spreadsheet", "content.xml": b""})
SAMPLES = {
    "object": (b'{"a": 1,\n "b": [1, 2]}\n', "json"),
    "array with BOM": ("\ufeff[1, 2, 3]".encode(), "json"),
    "broken JSON": (b'{"a": 1,,}', "json"),
    "JSON Lines": (b'{"a": 1}\n{"a": 2}\n{"a": 3}\n', "jsonl"),
    "CSV": (b"name,age\nada,36\nalan,41\n", "csv"),
    "semicolons": (b"name;age\nada;36\n", "csv"),
    "tabs": (b"name\tage\nada\t36\n", "tsv"),
    "prose": (b"The mill grinds.\nSlowly.\n", "txt"),
    "Latin-1 text": ("caf\u00e9 cr\u00e8me\n".encode("latin-1"), "txt"),
    "UTF-16 text": ("a,b\n1,2\n".encode("utf-16"), "csv"),
    "UTF-16 BOM and noise": (b"\xff\xfe\x00 not utf-8", "txt"),
    "XML": (b'<?xml version="1.0"?>\n<data/>', "xml"),
    "HTML": (b"<!DOCTYPE html><html><body>Not found</body></html>", "html"),
    "XLSX": (XLSX, "xlsx"),
    "ODS": (ODS, "ods"),
    "ZIP": (zipped({"a.json": b"{}"}), "zip"),
    "truncated ZIP": (XLSX[:40], "zip"),
    "PDF": (b"%PDF-1.7\n...", "pdf"),
    "PNG": (b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", "png"),
    "gzip": (b"\x1f\x8b\x08\0\0\0\0\0", "gz"),
    "binary": (b"\0\1\2\3garbage", None),
}


@pytest.mark.parametrize("label", SAMPLES)
def test_each_known_type_is_told_by_its_content(label: str, tmp_path: Path) -> None:
    data, kind = SAMPLES[label]
    path = tmp_path / "no-extension"
    path.write_bytes(data)
    assert sniff(path) == kind


def test_a_big_file_is_judged_by_its_head_even_with_a_character_cut_in_two(
    tmp_path: Path,
) -> None:
    row = "name,city\n" + "zoë,Zürich\n" * (HEAD_BYTES // 8)
    path = tmp_path / "big"
    path.write_bytes(row.encode())
    assert sniff(path) == "csv"
    lines = b'{"name": "\xc3\xa9"}\n' * (HEAD_BYTES // 10)
    path.write_bytes(lines)
    assert sniff(path) == "jsonl"


def test_names_and_contents_that_go_together() -> None:
    assert matches("json", "json") and matches("JSON", "json")
    assert matches("txt", "csv") and matches("csv", "txt") and matches("jsonl", "json")
    assert matches("ndjson", "jsonl") and matches("zip", "xlsx")
    assert matches("parquet", None)  # a type gristmill cannot tell: the name has the say
    assert not matches("json", "xlsx")
    assert not matches("json", "html")
    assert not matches("csv", "json")
    assert not matches("xlsx", "zip")
    assert not matches("json", None)


def test_types_are_described_for_people_and_read_from_media_types() -> None:
    assert describe("xlsx") == "an XLSX spreadsheet"
    assert describe(None) == "binary data of a type gristmill does not recognise"
    assert from_media_type("application/json; charset=utf-8") == "json"
    assert from_media_type("text/csv") == "csv"
    assert from_media_type("application/octet-stream") is None


def test_a_line_nested_too_deeply_to_parse_is_not_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "deep.jsonl"
    path.write_text('{"a": 1}\n' + "[" * 5000 + "]" * 5000 + "\n", encoding="utf-8")
    assert sniff(path) == "json"
