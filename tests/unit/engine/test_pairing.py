"""Pairing a map step's items with the ancestor's by key, on the memory store, run inline:
added, removed and changed items, no ancestor, duplicate keys, partitions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from gristmill import Inputs, Pipeline, RunContext, items, map_step, task
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import LocalFile
from gristmill.errors import DefinitionError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.unit.engine.conftest import MakeService


def records(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def comparing(partitions: int = 3, batch_size: int = 4) -> Pipeline:
    @map_step(
        items=items.json_lines(),
        batch_size=batch_size,
        pair_with_ancestor="id",
        pair_partitions=partitions,
    )
    def compare(current: Any, earlier: Any, run: RunContext) -> Any:
        if earlier is None:
            return {"kind": "added", "id": current["id"]}
        if current is None:
            return {"kind": "removed", "id": earlier["id"]}
        if current != earlier:
            return {"kind": "changed", "id": current["id"], "was": earlier["v"]}
        return None

    @task
    def report(run: RunContext) -> dict[str, Any]:
        found: dict[str, list[Any]] = {}
        for _, finding in run.findings("compare"):
            found.setdefault(finding["kind"], []).append(finding["id"])
        return {kind: sorted(ids) for kind, ids in found.items()}

    return Pipeline("compare", [compare, report], inputs=Inputs(min_count=1))


def run(service: Service, path: Path, ancestor: str | None = None) -> str:
    run_id = submit("compare", [LocalFile(path)], ancestor=ancestor, service=service)
    run_inline(service, run_id)
    return run_id


def test_items_are_paired_with_the_ancestors_by_key_added_removed_and_changed(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(comparing())
    first = run(service, records(tmp_path / "a.jsonl", [{"id": n, "v": n} for n in range(20)]))
    later = [{"id": n, "v": n * (2 if n % 5 == 0 else 1)} for n in range(3, 25)]
    second = run(service, records(tmp_path / "b.jsonl", later), ancestor=first)
    status = get_run(second, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    assert status.result("report") == {
        "added": [20, 21, 22, 23, 24],
        "removed": [0, 1, 2],
        "changed": [5, 10, 15],
    }
    # one item per key of either run: 22 current + 3 removed
    assert status.result("compare")["items"] == 25


def test_without_an_ancestor_every_item_is_paired_with_none(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(comparing(partitions=1))
    first = run(service, records(tmp_path / "a.jsonl", [{"id": n, "v": n} for n in range(7)]))
    assert get_run(first, service=service).result("report") == {"added": list(range(7))}


def test_two_items_with_the_same_key_fail_the_step_naming_both(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(comparing())
    rows = [{"id": 1, "v": 1}, {"id": 2, "v": 2}, {"id": 1, "v": 3}]
    status = get_run(run(service, records(tmp_path / "a.jsonl", rows)), service=service)
    assert status.state == RunState.FAILED
    assert "items 1 and 3 of this run have the same key 1" in (status.error or "")


def test_an_item_without_the_key_fails_the_step_with_a_clear_message(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(comparing())
    rows = [{"id": 1, "v": 1}, {"v": 2}]
    status = get_run(run(service, records(tmp_path / "a.jsonl", rows)), service=service)
    assert status.state == RunState.FAILED
    assert "item 2 of the current run: an item has no 'id'" in (status.error or "")


def test_the_pairing_options_are_checked_when_the_step_is_defined() -> None:
    with pytest.raises(DefinitionError, match="pair_with_ancestor must be"):
        map_step(items=items.json_lines(), pair_with_ancestor="", name="c")(lambda c, a, r: None)
    with pytest.raises(DefinitionError, match="pair_partitions must be"):
        map_step(items=items.json_lines(), pair_with_ancestor="id", pair_partitions=0, name="c")(
            lambda c, a, r: None
        )


def test_items_of_a_generator_reader_are_paired_too(
    make_service: MakeService, tmp_path: Path
) -> None:
    def rows(run: RunContext) -> Any:
        text = run.input.path.read_text(encoding="utf-8")
        for line in text.splitlines():
            yield json.loads(line)

    @map_step(items=rows, pair_with_ancestor=lambda item: item["id"] % 1000, batch_size=3)
    def compare(current: Any, earlier: Any, run: RunContext) -> Any:
        return {"kind": "pair", "now": current and current["v"], "was": earlier and earlier["v"]}

    service = make_service(Pipeline("compare", [compare], inputs=Inputs(min_count=1)))
    first = run(service, records(tmp_path / "a.jsonl", [{"id": 1, "v": "a"}, {"id": 2, "v": "b"}]))
    second = run(
        service,
        records(tmp_path / "b.jsonl", [{"id": 1002, "v": "c"}, {"id": 3, "v": "d"}]),
        ancestor=first,
    )
    status = get_run(second, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    examples = status.result("compare")["examples"]["pair"]
    assert {(e["now"], e["was"]) for e in examples} == {("c", "b"), ("d", None), (None, "a")}
