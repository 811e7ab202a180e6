"""What ``gristmill status`` and ``gristmill run`` print of a map step (``map_lines``)."""

from __future__ import annotations

from typing import Any

from gristmill.cli.display import map_lines


def summary(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "items_done": 19_500,
        "items_total": 20_000,
        "items_failed": 0,
        "batches": {"pending": 1, "done": 39, "failed": 0, "skipped": 0},
        "batches_total": 40,
        "counts": {"round": 300, "seven": 2_700, "fifty": 300},
        "partial": True,
        "failed_batches": [],
        "failed_batches_total": 0,
    }
    return {**base, **changes}


def test_a_running_map_is_marked_partial_with_its_findings_so_far() -> None:
    assert map_lines(summary()) == [
        "items 19,500 of 20,000, batches 39 of 40 [partial]",
        "findings so far: seven 2,700, fifty 300, round 300",
    ]


def test_an_ended_map_lists_its_failed_and_skipped_batches_and_how_many_more() -> None:
    failed = {"number": 3, "first_item": 1001, "items": 500, "error": "item 1234: boom"}
    listed = {"number": 7, "first_item": 3001, "items": 500, "error": None}
    lines = map_lines(
        summary(
            items_done=18_000,
            items_failed=2,
            batches={"pending": 0, "done": 36, "failed": 1, "skipped": 3},
            counts={},
            partial=False,
            failed_batches=[failed, {**listed, "failed_items_total": 2}],
            failed_batches_total=5,
        )
    )
    assert lines == [
        "items 18,000 of 20,000 (2 failed), batches 40 of 40 (1 failed, 3 skipped)",
        "failed batch 3 (items 1,001-1,500): item 1234: boom",
        "failed batch 7 (items 3,001-3,500): 2 failed items",
        "and 3 more failed batches",
    ]
