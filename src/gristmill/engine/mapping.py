"""Map steps in the engine: cut a map step's items into batches, read one batch's items, and
turn a finished map into the step's result (or the run's failure).

Memory stays bounded whatever the number of items: the splitter holds one chunk of the input
(:data:`CHUNK` bytes) and the list of batch boundaries (a few numbers per batch); a batch worker
holds one batch's bytes and its findings.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.authoring.items import JsonLines, find_input
from gristmill.authoring.maps import MapTask
from gristmill.errors import TaskError
from gristmill.states import BatchState
from gristmill.storage import FilesystemStorage
from gristmill.store.base import BatchSpec, MapStatus, Store

CHUNK = 1 << 20
"""Bytes the splitter reads at a time."""

MAX_LISTED_BATCHES = 100
"""How many failed batches a map step's result lists (the store's map status has them all)."""

FINDINGS_PAGE = 1000
"""Findings read from the store at a time by ``run.findings()``."""


def split(
    task: MapTask, run: RunContext, storage: FilesystemStorage, spill: Path
) -> tuple[int, list[BatchSpec]]:
    """Cut the step's items into batches: ``(items, batches)``. JSON Lines inputs are cut by
    byte ranges without parsing; other readers' items are written, a batch per file, under
    ``spill`` (a directory in the run's storage)."""
    reader = task.reader()
    if isinstance(reader, JsonLines):
        given = find_input(run, reader.input)
        return _line_ranges(given.path, storage.relative(given.path), task.batch_size)
    return _spill(reader.items(run), storage, spill, task.batch_size)


def _line_ranges(path: Path, source: str, size: int) -> tuple[int, list[BatchSpec]]:
    batches: list[BatchSpec] = []
    lines = 0  # complete lines before the current chunk
    start = 0  # where the open batch starts
    offset = 0  # bytes read before the current chunk
    last = b"\n"
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            count = chunk.count(b"\n")
            average = max(1, len(chunk) // max(1, count))
            position = 0  # where the rest of the chunk starts
            seen = 0  # newlines of the chunk before position
            while count - seen >= (need := size - (lines + seen - len(batches) * size)):
                position = _after_newlines(chunk, position, need, average)
                seen += need
                end = offset + position
                first = lines + seen - size + 1
                batches.append(BatchSpec(len(batches) + 1, first, size, source, start, end))
                start = end
            lines += count
            offset += len(chunk)
            last = chunk[-1:]
    if last != b"\n":
        lines += 1  # a last line without its newline
    rest = lines - len(batches) * size
    if rest:
        batches.append(BatchSpec(len(batches) + 1, lines - rest + 1, rest, source, start, None))
    return lines, batches


def _after_newlines(chunk: bytes, start: int, count: int, average: int) -> int:
    """The position just after the ``count``-th newline of ``chunk`` from ``start`` (there are
    that many): guessed from the average line length, then corrected line by line, so that
    the bytes are scanned in C and only the few lines around the guess in Python."""
    guess = min(len(chunk), start + count * average)
    found = chunk.count(b"\n", start, guess)
    position = guess
    if found >= count:
        for _ in range(found - count + 1):
            position = chunk.rindex(b"\n", start, position)
        return position + 1
    for _ in range(count - found):
        position = chunk.index(b"\n", position) + 1
    return position


def _spill(
    items: Iterator[Any], storage: FilesystemStorage, spill: Path, size: int
) -> tuple[int, list[BatchSpec]]:
    spill.mkdir(parents=True, exist_ok=True)
    batches: list[BatchSpec] = []
    total = 0
    out = None
    try:
        for item in items:
            if total % size == 0:
                if out is not None:
                    out.close()
                path = spill / f"batch-{len(batches) + 1:06d}.jsonl"
                out = path.open("w", encoding="utf-8")
                batches.append(BatchSpec(len(batches) + 1, total + 1, 0, storage.relative(path)))
            try:
                out.write(json.dumps(item, separators=(",", ":")) + "\n")  # type: ignore[union-attr]
            except (TypeError, ValueError) as error:
                raise TaskError(f"item {total + 1} cannot be stored as JSON: {error}") from None
            total += 1
    finally:
        if out is not None:
            out.close()
    specs = [
        BatchSpec(b.number, b.first_item, min(size, total - b.first_item + 1), b.source)
        for b in batches
    ]
    return total, specs


def batch_lines(storage: FilesystemStorage, spec: BatchSpec) -> list[str]:
    """The lines of one batch (one item each), read from its byte range. A batch's bytes are
    decoded as UTF-8 at once (a :class:`TaskError` naming the batch if they are not)."""
    with storage.path(spec.source).open("rb") as stream:
        stream.seek(spec.start)
        data = stream.read() if spec.end is None else stream.read(spec.end - spec.start)
    try:
        text = data.decode("utf-8-sig" if spec.start == 0 else "utf-8")
    except UnicodeDecodeError as error:
        raise TaskError(
            f"batch {spec.number} (items {spec.first_item} to "
            f"{spec.first_item + spec.items - 1}) is not UTF-8 text: {error.reason}"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def summary(status: MapStatus) -> dict[str, Any]:
    """A finished map as its step's stored result (and ``run.map_summary()``)."""
    return {
        "items": status.items_total,
        "items_done": status.items_done,
        "items_failed": status.items_failed,
        "counts": status.counts,
        "examples": status.examples,
        "batches": status.batches_total,
        "batches_by_state": status.batches,
        "failed_batches": [
            {
                "batch": failed.number,
                "first_item": failed.first_item,
                "items": failed.items,
                "state": failed.state,
                "error": failed.error,
                "failed_items": [
                    {"item": item, "error": message} for item, message in failed.failed_items
                ],
            }
            for failed in status.failed_batches[:MAX_LISTED_BATCHES]
        ],
        "failed_batches_total": len(status.failed_batches),
        "generation": status.generation,
    }


def failure_message(task: MapTask, status: MapStatus) -> str | None:
    """Why the run fails, under ``on_failure="fail"``, or ``None`` if it does not."""
    if task.on_failure != "fail":
        return None
    failed = [b for b in status.failed_batches if b.state == BatchState.FAILED]
    if not failed:
        return None
    first = failed[0]
    more = len(failed) - 1
    also = f" ({more} more batch{'es' if more != 1 else ''} failed)" if more else ""
    return f"step `{status.step}` failed in batch {first.number}: {first.error}{also}"


class StoreMapResults:
    """What ``run.findings()`` and ``run.map_summary()`` read: the store, a page at a time."""

    def __init__(self, store: Store, run_id: str):
        self.store = store
        self.run_id = run_id

    def findings(self, step: str, kind: str | None) -> Iterator[tuple[int, Any]]:
        after = 0
        while True:
            page = self.store.read_findings(
                self.run_id, step, after=after, limit=FINDINGS_PAGE, kind=kind
            )
            if not page:
                return
            for record in page:
                yield record.item, record.finding
            after = page[-1].item

    def summary(self, step: str) -> dict[str, Any]:
        for status in self.store.map_status(self.run_id):
            if status.step == step:
                return summary(status)
        raise TaskError(f"step `{step}` is not a map step of this run, or has not run yet")
