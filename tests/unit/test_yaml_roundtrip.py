"""YAML pipelines: a pipeline exported and imported back is the same definition, with the same
fingerprints, for every library task and for a command step with every option."""

from __future__ import annotations

import json
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field

import gristmill.library
from gristmill import Command, Inputs, Pipeline, task
from gristmill.authoring.registry import Registry, load_spec
from gristmill.authoring.yamlexport import export_pipelines
from gristmill.authoring.yamlimport import load_text
from gristmill.engine.planner import step_fingerprint
from gristmill.library import (
    DetectFormat,
    EvaluatePython,
    FieldStatistics,
    JsonToSpreadsheet,
    SafeUnzip,
    Sample,
    SpreadsheetToJson,
    ValidateSchema,
)

SCHEMA = {
    "type": "object",
    "required": ["id"],
    "properties": {"id": {"type": "string"}, "size": {"type": "integer", "minimum": 0}},
}


class Kind(StrEnum):
    people = "people"
    places = "places"


class CheckParams(BaseModel):
    """What a check takes."""

    model_config = {"extra": "forbid"}
    sample: int = Field(0, ge=0, le=1000, description="Items to check (0: all)")
    kind: Kind = Kind.people
    mode: Literal["fast", "thorough"] = "fast"
    label: str | None = Field(None, max_length=20, pattern="^[a-z]+$")
    ratio: float = Field(0.5, gt=0, lt=1)
    strict: bool = True
    tags: list[str] = Field(default_factory=list, max_length=5)
    code: str = "print(1)"


LIBRARY_STEPS: dict[str, Any] = {
    "DetectFormat": lambda: DetectFormat(accept=("json", "csv"), name="format", title="Format?"),
    "SpreadsheetToJson": lambda: SpreadsheetToJson(sheet="Data", output="rows.json"),
    "Sample": lambda: Sample(
        param="sample", mode="random", seed=7, source=["SpreadsheetToJson"], items="rows"
    ),
    "ValidateSchema": lambda: ValidateSchema(
        SCHEMA, formats=True, examples=3, max_groups=50, source=("Sample",), network=True
    ),
    "FieldStatistics": lambda: FieldStatistics(
        choices={"people": SCHEMA, "places": {"type": "object"}}, param="kind", max_fields=99
    ),
    "JsonToSpreadsheet": lambda: JsonToSpreadsheet(format="csv", output="out.csv"),
    "SafeUnzip": lambda: SafeUnzip(max_entries=10, max_total=1 << 20, max_ratio=50),
    "EvaluatePython": lambda: EvaluatePython("run_code", param="code", timeout=5, outputs=("*",)),
}


SOURCES = {"Sample": ["SpreadsheetToJson"], "ValidateSchema": ["SpreadsheetToJson", "Sample"]}
"""The steps a library step of LIBRARY_STEPS reads from, which must come before it."""


def same_definition(a: Pipeline, b: Pipeline) -> None:
    """Everything a run depends on is the same in ``a`` and ``b``, fingerprints included."""
    assert a.describe() == b.describe()
    assert (a.priority, a.step_timeout, a.max_attempts) == (
        b.priority,
        b.step_timeout,
        b.max_attempts,
    )
    assert (a.webhooks, a.ancestor, a.ancestors_from) == (b.webhooks, b.ancestor, b.ancestors_from)
    assert (a.page_template, a.inputs) == (b.page_template, b.inputs)
    params = a.params().model_dump(mode="json") if _defaults_valid(a) else {}
    for x, y in zip(a.steps, b.steps, strict=True):
        assert type(x) is type(y)
        for attr in ("step_name", "title", "description", "timeout", "network", "packages"):
            assert getattr(x, attr) == getattr(y, attr), attr
        assert (x.needs, x.uses, x.staff_only) == (y.needs, y.uses, y.staff_only)
        assert a.upstream_of(x) == b.upstream_of(y)
        mine = step_fingerprint(a, x, params, {}, ())
        theirs = step_fingerprint(b, y, params, {}, ())
        assert mine == theirs
        assert mine.digest == theirs.digest


def _defaults_valid(pipeline: Pipeline) -> bool:
    try:
        pipeline.params()
    except ValueError:
        return False
    return True


def round_trip(*pipelines: Pipeline) -> list[Pipeline]:
    exported = export_pipelines(pipelines)
    assert exported.notes == []
    return load_text(exported.text, "exported.yaml")


def test_the_round_trip_covers_every_task_of_the_library() -> None:
    assert sorted(LIBRARY_STEPS) == sorted(gristmill.library.__all__)


@pytest.mark.parametrize("name", sorted(LIBRARY_STEPS))
def test_a_library_task_survives_export_and_import(name: str) -> None:
    access = "superuser" if name == "EvaluatePython" else "anyone"
    steps = [LIBRARY_STEPS[earlier]() for earlier in SOURCES.get(name, ())]
    before = Pipeline(
        "library-step", [*steps, LIBRARY_STEPS[name]()], params=CheckParams, access=access
    )
    (after,) = round_trip(before)
    same_definition(before, after)
    assert after.steps[-1].version == before.steps[-1].version


def test_a_pipeline_of_every_library_task_survives_export_and_import() -> None:
    steps = [LIBRARY_STEPS[name]() for name in LIBRARY_STEPS if name != "EvaluatePython"]
    before = Pipeline("all-tasks", steps, params=CheckParams)
    (after,) = round_trip(before)
    same_definition(before, after)


def test_a_command_step_with_every_option_survives_export_and_import() -> None:
    first = Command("make", ["touch", "{workdir}/a.txt"], outputs=["a.txt"])
    command = Command(
        "tool",
        ["tool", "--label", "{params.label}", "{inputs}", "{outputs.make.a.txt}", "x{{y}}"],
        outputs=["*.csv", "report/*.json"],
        timeout=12.5,
        ok_codes=[0, 3],
        warn_codes=[1, 2],
        env={"LC_COLLATE": "C", "TOOL_MODE": "1"},
        stdout_json=True,
        title="The tool",
        version="4",
        needs=["make"],
        description="Runs the tool.",
        packages=["jsonschema"],
        staff_only=["argv", "stdout_tail"],
        network=False,
    )
    everything = Pipeline(
        "tool-run",
        [first, command, Command("after", ["true"], needs=None)],
        title="Tool run",
        description="Runs a tool\nover two lines.",
        inputs=Inputs(kinds=["file", "url"], extensions=["csv"], max_size=1000, max_count=3),
        params=CheckParams,
        queue="heavy",
        priority=-5,
        retention=timedelta(hours=36),
        access="signed-in",
        step_timeout=90,
        max_attempts=5,
        webhooks=["https://example.org/hook"],
        ancestor="previous",
        ancestors_from=["older-run"],
        page_template="tools/page.html",
    )
    (after,) = round_trip(everything)
    same_definition(everything, after)
    assert after.steps[1].argv == command.argv
    assert after.steps[2].needs is None
    assert after.retention == timedelta(hours=36)


def test_several_pipelines_make_one_file_of_several_documents() -> None:
    one = Pipeline("one", [DetectFormat()])
    two = Pipeline("two", [Command("list", ["ls", "{workdir}"])], retention=timedelta(seconds=61))
    text = export_pipelines([one, two]).text
    assert "\n---\n" in text
    assert "retention: 61\n" in text
    assert [p.name for p in load_text(text, "two.yaml")] == ["one", "two"]


def test_a_schema_read_from_a_file_is_written_inline(tmp_path: Path) -> None:
    schema_file = tmp_path / "schema.json"
    schema_file.write_text(json.dumps(SCHEMA))
    before = Pipeline("from-file", [ValidateSchema(str(schema_file))])
    text = export_pipelines([before]).text
    assert str(tmp_path) not in text
    (after,) = load_text(text, "inline.yaml")
    same_definition(before, after)


def test_a_relative_schema_path_is_read_from_the_files_folder(tmp_path: Path) -> None:
    (tmp_path / "schemas").mkdir()
    (tmp_path / "schemas" / "item.json").write_text(json.dumps(SCHEMA))
    text = "name: relative\nsteps:\n  - task: ValidateSchema\n    schema: schemas/item.json\n"
    (loaded,) = load_text(text, "relative.yaml", base=tmp_path)
    same_definition(loaded, Pipeline("relative", [ValidateSchema(SCHEMA)]))


@task
def shout(run: Any) -> str:
    return "loud"


class Count(gristmill.Task):
    def process(self, run: Any, upstream: Any) -> int:
        return 1


class Grep(Command):
    def process(self, run: Any, upstream: Any) -> Any:
        return super().process(run, upstream)


def test_python_steps_are_marked_in_the_export_and_named_in_its_notes() -> None:
    mixed = Pipeline("mixed", [DetectFormat(), shout, Count, Grep("grep", ["grep", "x"])])
    exported = export_pipelines([mixed])
    assert exported.notes == [
        f"step `shout` is Python code ({shout.identity})",
        f"step `Count` is Python code ({__name__}.Count)",
        f"step `grep` is Python code ({__name__}.Grep)",
    ]
    assert f"- name: shout\n  python: {shout.identity}\n" in exported.text
    assert f"# not exported: step `shout` is Python code ({shout.identity})\n" in exported.text


def test_python_attached_to_a_pipeline_is_named_in_the_notes() -> None:
    def small_enough(item: Any) -> bool:
        return True

    picky = Pipeline(
        "picky",
        [Command("check", ["true"], applicable=lambda run: True)],
        validators=[small_enough],
        webhook_secret="s3cret",
    )
    exported = export_pipelines([picky])
    assert exported.notes == [
        "pipeline `picky`: input validator small_enough() is Python code",
        "pipeline `picky`: its webhook secret is never written to a file",
        "step `check`: its applicable= predicate is Python code",
    ]
    assert "s3cret" not in exported.text


def test_a_yaml_file_in_the_pipelines_setting_registers_its_pipelines(tmp_path: Path) -> None:
    path = tmp_path / "tools.yml"
    before = Pipeline("lines", [Command("count", ["wc", "-l", "{input}"])])
    path.write_text(export_pipelines([before]).text)
    registry = Registry(specs=[str(path)])
    same_definition(before, registry.get("lines"))
    assert [p.name for p in load_spec(str(path))] == ["lines"]


def test_exporting_an_imported_pipeline_writes_the_same_text() -> None:
    steps = [LIBRARY_STEPS[name]() for name in LIBRARY_STEPS if name != "EvaluatePython"]
    text = export_pipelines([Pipeline("all-tasks", steps, params=CheckParams)]).text
    assert export_pipelines(load_text(text, "again.yaml")).text == text


def test_the_demos_of_commands_and_library_tasks_survive_export_and_import() -> None:
    demos = [p for p in load_spec("gristmill.demo.pipelines") if p.name in DEMOS]
    exported = export_pipelines(demos)
    assert [note for note in exported.notes if "Python code" in note] == []
    imported = load_text(exported.text, "demos.yaml")
    for before, after in zip(demos, imported, strict=True):
        same_definition(before, after)


DEMOS = ("data-checker", "command-line-tools")
