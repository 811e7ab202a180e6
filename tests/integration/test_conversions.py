"""Converting a stored data file to another datatype over the API, on each database
(``POST /api/v1/datafiles/{id}/conversions``): JSON ↔ CSV / XLSX by the task library's
converters, kept as a new data file of the caller.
"""

from __future__ import annotations

import io
import json
from typing import Any

import pytest

from gristmill.app.service import Service
from tests.integration.test_access import bearer, browser, error_of, make_user
from tests.integration.test_datafiles import API, UNKNOWN, api_upload, not_found, site

__all__ = ["site"]  # the fixture, used here too

ITEMS = [
    {"id": 1, "meta": {"source": "census", "year": 2021}, "tags": ["a", "b"]},
    {"id": 2, "meta": {"source": "survey", "year": 2022}, "tags": ["c"], "note": "=1+1"},
]


def upload(owner: Any, name: str, data: bytes) -> str:
    response = api_upload(browser(), name, data, **bearer(owner))
    assert response.status_code == 201, response.json()
    return str(response.json()["id"])


def convert(owner: Any, file_id: str, to: str) -> Any:
    return browser().post(
        f"{API}/{file_id}/conversions",
        {"to": to},
        content_type="application/json",
        headers=bearer(owner),
    )


def converted(owner: Any, file_id: str, to: str) -> dict[str, Any]:
    response = convert(owner, file_id, to)
    assert response.status_code == 201, response.json()
    body: dict[str, Any] = response.json()
    return body


def content(owner: Any, file_id: str) -> bytes:
    response = browser().get(f"{API}/{file_id}/content", headers=bearer(owner))
    assert response.status_code == 200
    return b"".join(response.streaming_content)


def test_json_converts_to_csv_and_back_to_the_same_items(site: Service) -> None:
    owner = make_user()
    source = upload(owner, "items.json", json.dumps(ITEMS).encode())
    csv_file = converted(owner, source, "csv")
    assert (csv_file["name"], csv_file["media_type"]) == ("items.csv", "text/csv")
    assert content(owner, csv_file["id"]).decode().splitlines()[0] == (
        "id,meta/source,meta/year,tags/0,tags/1,note"
    )
    json_file = converted(owner, csv_file["id"], "json")
    assert (json_file["name"], json_file["media_type"]) == ("items.json", "application/json")
    assert json.loads(content(owner, json_file["id"])) == ITEMS
    # The converted JSON is a data file like any other: kept as a document too.
    document = browser().get(f"{API}/{json_file['id']}/document", headers=bearer(owner))
    assert document.json() == ITEMS


def test_json_converts_to_xlsx_with_one_row_an_item(site: Service) -> None:
    import openpyxl

    owner = make_user()
    source = upload(owner, "items.json", json.dumps(ITEMS).encode())
    xlsx_file = converted(owner, source, "xlsx")
    assert xlsx_file["name"] == "items.xlsx"
    book = openpyxl.load_workbook(io.BytesIO(content(owner, xlsx_file["id"])), read_only=True)
    rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    assert rows == [
        ["id", "meta/source", "meta/year", "tags/0", "tags/1", "note"],
        [1, "census", 2021, "a", "b"],  # a row ends at its last cell
        [2, "survey", 2022, "c", None, "=1+1"],
    ]
    assert json.loads(content(owner, converted(owner, xlsx_file["id"], "json")["id"])) == ITEMS


def test_csv_converts_to_xlsx_through_json(site: Service) -> None:
    import openpyxl

    owner = make_user()
    source = upload(owner, "table.csv", b"name,count\nmill,3\ngrist,4\n")
    xlsx_file = converted(owner, source, "xlsx")
    book = openpyxl.load_workbook(io.BytesIO(content(owner, xlsx_file["id"])), read_only=True)
    rows = [list(row) for row in book.worksheets[0].iter_rows(values_only=True)]
    book.close()
    assert rows == [["name", "count"], ["mill", 3], ["grist", 4]]


def test_a_large_json_array_converts_and_comes_back_whole(site: Service) -> None:
    owner = make_user()
    items = [{"id": n, "meta": {"source": f"s{n % 7}"}} for n in range(30_000)]
    source = upload(owner, "large.json", json.dumps(items).encode())
    csv_file = converted(owner, source, "csv")
    assert len(content(owner, csv_file["id"]).decode().splitlines()) == 30_001
    back = converted(owner, csv_file["id"], "json")
    assert json.loads(content(owner, back["id"])) == items


def test_the_converted_file_belongs_to_the_caller(site: Service) -> None:
    owner = make_user()
    source = upload(owner, "items.json", json.dumps(ITEMS).encode())
    assert converted(owner, source, "csv")["owner"] == owner.username


@pytest.mark.parametrize(
    ("name", "data", "to", "message"),
    [
        ("items.json", b"[]", "pdf", "to: cannot convert to 'pdf': choose one of json, csv, xlsx"),
        (
            "notes.txt",
            b"grist for the mill",
            "csv",
            "to: notes.txt is plain text; conversion reads JSON, JSON Lines, CSV or XLSX",
        ),
        ("items.json", b'[{"a": 1}]', "json", "to: items.json is already JSON"),
        ("items.jsonl", b'{"a": 1}\n{"a": 2}\n', "json", "to: items.jsonl is already JSON Lines"),
        (
            "broken.json",
            b'[{"a": 1}, {"a": ]',
            "csv",
            "to: broken.json is not valid JSON: Unexpected symbol ']' at line 1 column 18",
        ),
    ],
)
def test_a_conversion_that_cannot_be_done_answers_400_and_keeps_nothing(
    site: Service, name: str, data: bytes, to: str, message: str
) -> None:
    from gristmill.server.models import DataFile

    owner = make_user()
    source = upload(owner, name, data)
    assert error_of(convert(owner, source, to)) == (400, message)
    assert DataFile.objects.filter(owner_id=owner.pk).count() == 1


def test_another_users_file_answers_like_one_that_does_not_exist(site: Service) -> None:
    source = upload(make_user(), "items.json", json.dumps(ITEMS).encode())
    assert error_of(convert(make_user(), source, "csv")) == not_found(source)
    assert error_of(convert(make_user(), UNKNOWN, "csv")) == not_found(UNKNOWN)


def test_anonymous_callers_are_asked_to_sign_in(site: Service) -> None:
    response = browser().post(
        f"{API}/{UNKNOWN}/conversions", {"to": "csv"}, content_type="application/json"
    )
    assert response.status_code == 401
