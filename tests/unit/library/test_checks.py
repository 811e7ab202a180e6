"""Sampling, schema validation, field statistics and format detection."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from gristmill import DefinitionError, TaskError
from gristmill.library import DetectFormat, FieldStatistics, Sample, ValidateSchema
from gristmill.library.schemas import Checker, json_path
from tests.unit.library.conftest import Runner

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["id"],
    "properties": {
        "id": {"type": "string"},
        "parties": {"type": "array", "items": {"$ref": "#/$defs/party"}},
    },
    "$defs": {"party": {"type": "object", "properties": {"name": {"type": "string"}}}},
}

ITEMS: list[Any] = [
    {"id": "a", "parties": [{"name": "x"}, {"name": 3}]},
    {"parties": [{"name": 4, "role": "buyer"}]},
    {"id": 7, "extra": {"deep": 1}},
    {"id": "ok"},
]


def items_file(tmp_path: Path, items: list[Any]) -> Path:
    path = tmp_path / "items.json"
    path.write_text(json.dumps(items), encoding="utf-8")
    return path


def sample_of(run_task: Runner, path: Path, task: Sample, params: Any = None) -> list[Any]:
    _, run = run_task(task, path, params)
    kept: list[Any] = json.loads(run.outputs[0].path.read_text(encoding="utf-8"))
    return kept


def test_the_first_n_items(run_task: Runner, tmp_path: Path) -> None:
    path = items_file(tmp_path, list(range(100)))
    assert sample_of(run_task, path, Sample(size=3)) == [0, 1, 2]


def test_a_seeded_random_sample_is_the_same_each_time(run_task: Runner, tmp_path: Path) -> None:
    path = items_file(tmp_path, list(range(1000)))
    first = sample_of(run_task, path, Sample(size=10, mode="random", seed=4))
    again = sample_of(run_task, path, Sample(size=10, mode="random", seed=4))
    other = sample_of(run_task, path, Sample(size=10, mode="random", seed=5))
    assert first == again != other
    assert len(set(first)) == 10 and first != list(range(10))


def test_the_size_can_come_from_a_parameter(run_task: Runner, tmp_path: Path) -> None:
    path = items_file(tmp_path, list(range(10)))
    task = Sample(param="sample")
    assert task.is_applicable(_run(SimpleNamespace(sample=0))) is False
    assert sample_of(run_task, path, task, SimpleNamespace(sample=2)) == [0, 1]


def _run(params: Any) -> Any:
    return SimpleNamespace(params=params)


def test_a_sample_needs_one_size() -> None:
    with pytest.raises(DefinitionError):
        Sample()


@pytest.mark.parametrize("backend", ["jsonschema-rs", "jsonschema"])
def test_errors_are_grouped_by_kind_with_item_and_path(
    run_task: Runner, tmp_path: Path, backend: str
) -> None:
    result, run = run_task(ValidateSchema(SCHEMA, backend=backend), items_file(tmp_path, ITEMS))

    assert result["validator"].startswith(backend + " ")
    assert (result["items"], result["invalid_items"], result["errors"]) == (4, 3, 4)
    assert [(g["keyword"], g["path"], g["count"]) for g in result["groups"]] == [
        ("type", "$.parties[*].name", 2),
        ("required", "$", 1),
        ("type", "$.id", 1),
    ]
    assert [e["item"] for e in result["groups"][0]["examples"]] == [0, 1]
    assert result["groups"][0]["examples"][0]["path"] == "$.parties[1].name"
    lines = run.outputs[0].path.read_text(encoding="utf-8").splitlines()
    assert json.loads(lines[0]) == {
        "item": 0,
        "keyword": "type",
        "path": "$.parties[1].name",
        "message": "3 is not of type 'string'"
        if backend == "jsonschema"
        else '3 is not of type "string"',
    }


def test_examples_are_bounded(run_task: Runner, tmp_path: Path) -> None:
    path = items_file(tmp_path, [{"id": n} for n in range(50)])
    result, _ = run_task(ValidateSchema(SCHEMA, examples=3), path)
    assert result["groups"][0]["count"] == 50
    assert len(result["groups"][0]["examples"]) == 3


def test_an_invalid_schema_is_refused_when_the_pipeline_is_defined() -> None:
    with pytest.raises(DefinitionError) as error:
        ValidateSchema({"type": "nonsense"})
    assert str(error.value).startswith("the schema is not a valid JSON Schema: ")


def test_json_paths_quote_awkward_keys() -> None:
    assert json_path(["a", 0, "b c"]) == '$.a[0]["b c"]'
    assert json_path(["a", 0, "b"], pattern=True) == "$.a[*].b"


def test_both_validators_give_the_same_paths() -> None:
    found = {
        backend: sorted(
            (p.keyword, p.path) for item in ITEMS for p in Checker(SCHEMA, backend).problems(item)
        )
        for backend in ("jsonschema-rs", "jsonschema")
    }
    assert found["jsonschema-rs"] == found["jsonschema"]


def test_fields_types_and_additional_fields(run_task: Runner, tmp_path: Path) -> None:
    result, _ = run_task(FieldStatistics(SCHEMA), items_file(tmp_path, ITEMS))

    fields = {f["path"]: (f["items"], f["types"]) for f in result["fields"]}
    assert fields["$.id"] == (3, {"string": 2, "integer": 1})
    assert fields["$.parties[*].name"] == (2, {"string": 1, "integer": 2})
    assert [(a["path"], a["count"]) for a in result["additional_fields"]] == [
        ("$.extra", 1),
        ("$.parties[*].role", 1),
    ]
    assert result["additional_fields"][1]["examples"] == [{"item": 1, "path": "$.parties[0].role"}]


def test_without_a_schema_no_additional_fields_are_judged(run_task: Runner, tmp_path: Path) -> None:
    result, _ = run_task(FieldStatistics(), items_file(tmp_path, ITEMS))
    assert result["additional_fields"] is None
    assert "$.extra.deep" in {f["path"] for f in result["fields"]}


@pytest.mark.parametrize(
    ("name", "content", "found"),
    [
        ("a.json", b'{"a": 1}', "json"),
        ("a.jsonl", b'{"a": 1}\n{"a": 2}\n', "jsonl"),
        ("a.csv", b"a,b\n1,2\n", "csv"),
        ("a.txt", b"a;b\n1;2\n", "csv"),
    ],
)
def test_formats_are_told_by_content(
    run_task: Runner, tmp_path: Path, name: str, content: bytes, found: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)
    result, _ = run_task(DetectFormat(), path)
    assert result["format"] == found


def test_an_unknown_format_is_named(run_task: Runner, tmp_path: Path) -> None:
    path = tmp_path / "a.json"
    path.write_bytes(b"%PDF-1.4 ...")
    with pytest.raises(TaskError) as error:
        run_task(DetectFormat(), path)
    assert str(error.value) == (
        "a.json is a PDF document; expected JSON, JSON Lines, CSV, an XLSX spreadsheet, "
        "an ODS spreadsheet, a ZIP archive"
    )


def test_detects_spreadsheets_and_archives(run_task: Runner, tmp_path: Path) -> None:
    import zipfile

    import openpyxl

    book = openpyxl.Workbook()
    book.active.append(["a"])
    book.save(tmp_path / "a.xlsx")
    with zipfile.ZipFile(tmp_path / "a.ods", "w") as ods:
        ods.writestr("mimetype", "application/vnd.oasis.opendocument.spreadsheet")
        ods.writestr("content.xml", "<x/>")
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as plain:
        plain.writestr("a.json", "[]")
    found = [
        run_task(DetectFormat(), tmp_path / f"a.{k}")[0]["format"] for k in ("xlsx", "ods", "zip")
    ]
    assert found == ["xlsx", "ods", "zip"]


@pytest.mark.parametrize("backend", ["jsonschema-rs", "jsonschema"])
def test_formats_are_checked_when_asked(run_task: Runner, tmp_path: Path, backend: str) -> None:
    schema = {"type": "object", "properties": {"date": {"type": "string", "format": "date"}}}
    path = items_file(tmp_path, [{"date": "2026-12-06"}, {"date": "yesterday"}])
    loose, _ = run_task(ValidateSchema(schema, backend=backend), path)
    strict, _ = run_task(ValidateSchema(schema, backend=backend, formats=True), path)
    assert loose["errors"] == 0
    assert [(g["keyword"], g["path"], g["count"]) for g in strict["groups"]] == [
        ("format", "$.date", 1)
    ]


@pytest.mark.parametrize(
    "reference", ["http://127.0.0.1:9/x.json", "other.json#/$defs/x", "file:///etc/passwd"]
)
def test_a_schema_that_refers_outside_itself_is_refused(reference: str) -> None:
    schema = {"type": "object", "properties": {"a": {"$ref": reference}}}
    with pytest.raises(DefinitionError) as error:
        ValidateSchema(schema)
    assert str(error.value) == (
        f"the schema refers to {reference!r}, which is not inside it; remote references are "
        "never fetched, so put what it names under $defs"
    )


def test_references_inside_the_schema_by_pointer_or_id_are_fine(
    run_task: Runner, tmp_path: Path
) -> None:
    schema = {
        "$id": "https://example.org/root.json",
        "type": "object",
        "properties": {
            "a": {"$ref": "#/$defs/a"},
            "b": {"$ref": "https://example.org/b.json"},
        },
        "$defs": {
            "a": {"type": "string"},
            "b": {"$id": "https://example.org/b.json", "type": "integer"},
        },
    }
    path = items_file(tmp_path, [{"a": "x", "b": 1}, {"a": 1, "b": "x"}])
    result, _ = run_task(ValidateSchema(schema), path)
    assert [(g["keyword"], g["path"]) for g in result["groups"]] == [
        ("type", "$.a"),
        ("type", "$.b"),
    ]


def test_a_parameter_picks_one_of_several_schemas(run_task: Runner, tmp_path: Path) -> None:
    strict = {"type": "object", "required": ["id"]}
    task = ValidateSchema(choices={"loose": {"type": "object"}, "strict": strict}, param="kind")
    path = items_file(tmp_path, [{"a": 1}])
    assert task.uses == ("kind",)
    loose, _ = run_task(task, path, SimpleNamespace(kind="loose"))
    checked, _ = run_task(task, path, SimpleNamespace(kind="strict"))
    assert (loose["schema"], loose["errors"]) == ("loose", 0)
    assert (checked["schema"], checked["errors"]) == ("strict", 1)
    with pytest.raises(TaskError) as error:
        run_task(task, path, SimpleNamespace(kind="other"))
    assert str(error.value) == "no schema named 'other' (known: loose, strict)"


def test_a_schema_sent_as_an_input_is_used_and_checked(run_task: Runner, tmp_path: Path) -> None:
    from tests.unit.library.conftest import context

    data = items_file(tmp_path, [{"a": 1}, {"a": "x"}])
    sent = tmp_path / "mine.json"
    sent.write_text(json.dumps({"properties": {"a": {"type": "integer"}}}), encoding="utf-8")
    run = context(data, tmp_path / "work")
    run.inputs = (*run.inputs, context(sent, tmp_path).inputs[0])
    (tmp_path / "work").mkdir()
    task = ValidateSchema(SCHEMA, schema_input=1)

    result = task.process(run, {})

    assert (result["schema"], result["errors"]) == ("mine.json", 1)
    sent.write_text(json.dumps({"$ref": "http://127.0.0.1:9/x"}), encoding="utf-8")
    with pytest.raises(TaskError) as error:
        task.process(run, {})
    assert str(error.value).startswith("mine.json: the schema refers to 'http://127.0.0.1:9/x'")


def test_field_statistics_without_a_schema_need_none() -> None:
    assert FieldStatistics().choice.pick(_run(None)) is None


def test_the_checkers_run_without_network_unless_told() -> None:
    assert ValidateSchema(SCHEMA).network is False
    assert FieldStatistics().network is False
    assert ValidateSchema(SCHEMA, network=True).network is True
    assert DetectFormat().network is True
