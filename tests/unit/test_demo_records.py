"""The records demo on the memory store, run inline: its shipped datasets, its report and the
comparison with the previous run; and the dataset generator."""

from __future__ import annotations

import io
import json
from pathlib import Path

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.demo import generate
from gristmill.demo.records import CHECKS, problems, records_check
from gristmill.executors.inline import run_inline
from gristmill.states import RunState

DATA = Path(generate.__file__).parent / "data"


def test_the_demo_reports_each_check_and_compares_the_later_dataset_with_the_first(
    tmp_path: Path,
) -> None:
    service = Service.in_memory([records_check], tmp_path / "data")
    first = submit("records-check", [DATA / "records.jsonl"], owner_id=1, service=service)
    assert run_inline(service, first) == RunState.SUCCEEDED
    report = get_run(first, service=service).result("RecordsReport")
    lines = (DATA / "records.jsonl").read_text(encoding="utf-8").splitlines()
    expected: dict[str, int] = {}
    for line in lines:
        for finding in problems(json.loads(line)):
            expected[finding["kind"]] = expected.get(finding["kind"], 0) + 1
    assert report["items"] == len(lines) == 2000
    assert {c["check"]: c["failed"] for c in report["checks"]} == {
        kind: expected.get(kind, 0) for kind in CHECKS
    }
    assert all(c["trend"] is None for c in report["checks"])
    for kind, kept in report["examples"].items():
        assert 1 <= len(kept) <= 5 and all(e["kind"] == kind for e in kept)
    assert report["comparison"] is None

    # The later dataset has the same file name: the owner's previous run is its ancestor.
    later_file = DATA / "later" / "records.jsonl"
    second = submit("records-check", [later_file], owner_id=1, service=service)
    assert get_run(second, service=service).run.ancestor_id == first
    assert run_inline(service, second) == RunState.SUCCEEDED
    later = get_run(second, service=service).result("RecordsReport")
    comparison = later["comparison"]
    later_lines = later_file.read_text(encoding="utf-8").splitlines()
    later_ids = {json.loads(line)["ocid"] for line in later_lines}
    first_ids = {json.loads(line)["ocid"] for line in lines}
    assert comparison["ancestor"] == first
    assert comparison["counts"]["added"] == len(later_ids - first_ids) == 60
    assert comparison["counts"]["removed"] == len(first_ids - later_ids)
    assert comparison["counts"]["changed"] > 0 and comparison["counts"]["fixed"] > 0
    assert {c["trend"] for c in later["checks"]} <= {"better", "worse", "same"}


def test_the_generator_writes_the_same_records_for_the_same_seed_and_a_later_variant() -> None:
    one, two, later = io.StringIO(), io.StringIO(), io.StringIO()
    assert generate.write(one, 500, seed=7) == 500
    generate.write(two, 500, seed=7)
    assert one.getvalue() == two.getvalue()
    assert generate.write(later, 500, seed=7, later=True) == len(later.getvalue().splitlines())
    first = {json.loads(line)["ocid"]: json.loads(line) for line in one.getvalue().splitlines()}
    again = [json.loads(line) for line in later.getvalue().splitlines()]
    kept = [item for item in again if item["ocid"] in first]
    assert 0 < len(first) - len(kept) < 50  # some removed
    assert sum(1 for item in kept if item != first[item["ocid"]]) > 0  # some changed
    assert len(again) - len(kept) == 15  # 3% added


def test_the_generator_command_writes_a_file(tmp_path: Path) -> None:
    out = tmp_path / "records.jsonl"
    assert generate.main(["--items", "120", "-o", str(out)]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 120
