"""What every store does alike for map steps: sum a map's batches into a
:class:`~gristmill.store.records.MapStatus`, and the messages of batches lost with their workers.

A store reads a map's row and its batch rows (never its findings) and hands them here, so that
the memory store and the SQL store sum them the same way. The batch rows are only read: what
the status holds of them is copied, so a store may hand over its own rows.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from gristmill.states import BatchState
from gristmill.store.records import MAX_EXAMPLES, FailedBatch, MapStatus


@dataclass
class MapRow:
    """A map as stored."""

    step: str
    position: int
    on_failure: str
    fingerprint: dict[str, Any]
    generation: int
    batches_total: int
    remaining: int
    items_total: int
    items_done: int
    settled: bool


@dataclass
class BatchRow:
    """A batch as stored, without its findings."""

    number: int
    first_item: int
    items: int
    state: str
    items_done: int = 0
    items_failed: int = 0
    counts: Mapping[str, int] = field(default_factory=dict)
    examples: Mapping[str, Sequence[Any]] = field(default_factory=dict)
    failed_items: Sequence[Sequence[Any]] = ()
    error: str | None = None


def lost_batch_message(reason: str, attempt: int, failures: int) -> str:
    """Why a batch whose workers kept being lost failed."""
    return f"worker lost ({reason}) on attempt {attempt}; gave up after {failures} lost attempts"


def status(row: MapRow, batches: Iterable[BatchRow]) -> MapStatus:
    """The status of the map ``row`` from its batches (summed over the ended ones); shares
    nothing with ``batches``."""
    states = {state.value: 0 for state in BatchState}
    counts: dict[str, int] = {}
    examples: dict[str, list[Any]] = {}
    failed: list[FailedBatch] = []
    items_failed = 0
    for batch in sorted(batches, key=lambda b: b.number):
        states[batch.state] = states.get(batch.state, 0) + 1
        if batch.state == BatchState.PENDING:
            continue
        items_failed += batch.items_failed
        for kind, count in batch.counts.items():
            counts[kind] = counts.get(kind, 0) + count
        for kind, found in batch.examples.items():
            kept = examples.setdefault(kind, [])
            kept.extend(found[: MAX_EXAMPLES - len(kept)])
        if batch.state == BatchState.FAILED or batch.failed_items:
            failed.append(
                FailedBatch(
                    batch.number,
                    batch.first_item,
                    batch.items,
                    batch.state,
                    batch.error,
                    [(int(item), str(message)) for item, message in batch.failed_items],
                )
            )
    return MapStatus(
        step=row.step,
        position=row.position,
        on_failure=row.on_failure,
        fingerprint=row.fingerprint,
        generation=row.generation,
        batches_total=row.batches_total,
        remaining=row.remaining,
        batches=states,
        items_total=row.items_total,
        items_done=row.items_done,
        items_failed=items_failed,
        counts=dict(sorted(counts.items())),
        examples=copy.deepcopy(dict(sorted(examples.items()))),
        failed_batches=failed,
        settled=row.settled,
    )
