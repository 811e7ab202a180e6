"""Map steps in the engine: cut a map step's items into batches, read one batch's items, and
turn a finished map into the step's result (or the run's failure).

Memory stays bounded whatever the number of items: the splitter holds one chunk of the input
(:data:`CHUNK` bytes) and the list of batch boundaries (a few numbers per batch); a batch worker
holds one batch's bytes and its findings.
"""

from __future__ import annotations

import contextlib
import copy
import json
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson

from gristmill.authoring.context import RunContext
from gristmill.authoring.items import JsonLines, find_input
from gristmill.authoring.maps import MapTask
from gristmill.errors import TaskError
from gristmill.states import BatchState
from gristmill.storage import Storage
from gristmill.store.base import Store
from gristmill.store.records import BatchSpec, MapStatus

_quoted = json.encoder.encode_basestring_ascii
"""A string as JSON text, as ``json.dumps`` writes it (in C)."""

CHUNK = 1 << 20
"""Bytes the splitter reads at a time."""

MAX_LISTED_BATCHES = 100
"""How many failed batches a map step's result lists (the store's map status has them all)."""

FINDINGS_PAGE = 1000
"""Findings read from the store at a time by ``run.findings()``."""


def split(
    task: MapTask, run: RunContext, storage: Storage, spill: Path
) -> tuple[int, list[BatchSpec]]:
    """Cut the step's items into batches: ``(items, batches)``. JSON Lines inputs are cut by
    byte ranges without parsing; other readers' items are written, a batch per file, under
    ``spill`` (a directory in the run's storage)."""
    reader = task.reader()
    if task.pair_with_ancestor is not None:
        paired = pairs(task, run, spill.parent / "pairs")
        return _spill_lines(paired, storage, spill, task.batch_size)
    if isinstance(reader, JsonLines):
        given = find_input(run, reader.input)
        return _line_ranges(given.path, storage.relative(given.path), task.batch_size)
    return _spill(reader.items(run), storage, spill, task.batch_size)


def _ancestor_view(run: RunContext) -> RunContext:
    """``run`` as the ancestor's reader sees it: the ancestor's inputs, no ancestor."""
    assert run.ancestor is not None
    view = copy.copy(run)
    view.inputs = run.ancestor.inputs
    view.ancestor = None
    return view


def pairs(task: MapTask, run: RunContext, directory: Path) -> Iterator[str]:
    """The items of the run paired with the ancestor's by key, each pair a line of JSON text
    ``[current, ancestor]``, ``null`` on the side that lacks the key; no ancestor pairs every
    item with ``null``.

    Memory stays bounded by one partition: both runs' items are streamed once into
    ``task.pair_partitions`` files by a hash of the key, then each partition is read whole,
    paired and yielded (this run's items in reading order, then the ancestor's removed items).
    Items travel as their JSON text (a JSON Lines input's own lines), parsed once for the key.
    Two items of one run with the same key are a :class:`TaskError` naming both.
    """
    count = task.pair_partitions
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / f"partition-{n:04d}.txt" for n in range(count)]
    sides: list[tuple[str, RunContext]] = [("current", run)]
    if run.ancestor is not None:
        sides.append(("ancestor", _ancestor_view(run)))
    crc32 = zlib.crc32
    with contextlib.ExitStack() as stack:
        outs = [stack.enter_context(path.open("w", encoding="utf-8")) for path in paths]
        for side, view in sides:
            flag = side[0]
            for number, (item, text) in enumerate(_item_texts(task, view, side), 1):
                key = _key_text(task, item, number, side)
                outs[crc32(key.encode()) % count].write(f"{flag}\t{number}\t{key}\t{text}\n")
    ancestor = run.ancestor.id if run.ancestor is not None else ""
    for path in paths:
        current: dict[str, tuple[int, str]] = {}
        earlier: dict[str, tuple[int, str]] = {}
        with path.open(encoding="utf-8") as stream:
            for line in stream:
                flag, number_text, key, text = line.rstrip("\n").split("\t", 3)
                number = int(number_text)
                seen = current if flag == "c" else earlier
                if key in seen:
                    where = "this run" if flag == "c" else f"the ancestor run {ancestor}"
                    raise TaskError(
                        f"items {seen[key][0]} and {number} of {where} have the same key {key}: "
                        f"step `{task.step_name}` pairs items by a key that must be unique"
                    )
                seen[key] = (number, text)
        path.unlink()
        for key, (_, text) in sorted(current.items(), key=lambda entry: entry[1][0]):
            found = earlier.pop(key, None)
            yield f"[{text},{found[1] if found else 'null'}]"
        for _, text in sorted(earlier.values()):
            yield f"[null,{text}]"


def _item_texts(task: MapTask, view: RunContext, side: str) -> Iterator[tuple[Any, str]]:
    """Each item of ``view`` with its JSON text: a JSON Lines input's own lines, parsed once;
    other readers' items encoded."""
    reader = task.reader()
    if isinstance(reader, JsonLines):
        with find_input(view, reader.input).path.open(encoding="utf-8-sig") as stream:
            for number, line in enumerate(stream, 1):
                text = line.strip()
                try:
                    yield (json.loads(text) if text else None), text or "null"
                except ValueError as error:
                    raise TaskError(
                        f"item {number} of the {side} run is not JSON: {error}"
                    ) from None
        return
    for number, item in enumerate(reader.items(view), 1):
        try:
            yield item, json.dumps(item, separators=(",", ":"), allow_nan=False)
        except (TypeError, ValueError) as error:
            raise TaskError(
                f"item {number} of the {side} run cannot be stored as JSON: {error}"
            ) from None


def _spill_lines(
    lines: Iterator[str], storage: Storage, spill: Path, size: int
) -> tuple[int, list[BatchSpec]]:
    """Write lines of JSON text (one item each) to batch files of ``size`` lines."""
    spill.mkdir(parents=True, exist_ok=True)
    batches: list[BatchSpec] = []
    total = 0
    out = None
    try:
        for line in lines:
            if total % size == 0:
                if out is not None:
                    out.close()
                path = spill / f"batch-{len(batches) + 1:06d}.jsonl"
                out = path.open("w", encoding="utf-8")
                batches.append(BatchSpec(len(batches) + 1, total + 1, 0, storage.relative(path)))
            out.write(line + "\n")  # type: ignore[union-attr]
            total += 1
    finally:
        if out is not None:
            out.close()
    for batch in batches:  # stored before the map's row names them (uploaded, if remote)
        storage.keep(storage.path(batch.source))
    specs = [
        BatchSpec(b.number, b.first_item, min(size, total - b.first_item + 1), b.source)
        for b in batches
    ]
    return total, specs


def _key_text(task: MapTask, item: Any, number: int, side: str) -> str:
    try:
        key = task.pair_key(item)
        if type(key) is str:  # the common keys, without json.dumps's overhead
            return _quoted(key)
        if type(key) is int:
            return str(key)
        return json.dumps(key, sort_keys=True, separators=(",", ":"), allow_nan=False)
    except TaskError as error:
        raise TaskError(f"item {number} of the {side} run: {error.message}") from None
    except (TypeError, ValueError) as error:
        raise TaskError(
            f"item {number} of the {side} run has a key that is not JSON: {error}"
        ) from None
    except Exception as error:
        raise TaskError(
            f"item {number} of the {side} run: its key cannot be found: "
            f"{type(error).__name__}: {error}"
        ) from None


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
    items: Iterator[Any], storage: Storage, spill: Path, size: int
) -> tuple[int, list[BatchSpec]]:
    """Write items as JSON text to batch files of ``size`` lines."""

    def encoded() -> Iterator[str]:
        for number, item in enumerate(items, 1):
            try:
                yield json.dumps(item, separators=(",", ":"))
            except (TypeError, ValueError) as error:
                raise TaskError(f"item {number} cannot be stored as JSON: {error}") from None

    return _spill_lines(encoded(), storage, spill, size)


_DIGITS = bytes(48 if 48 <= byte <= 57 else 32 for byte in range(256))
"""A table for ``bytes.translate``: each digit becomes ``0``, every other byte a space."""

_LONG_NUMBER = b"0" * 19
"""A run of 19 digits: past what orjson reads as ``json`` does (it reads an integer past 64 bits
as a float, without a word)."""


def fast_loads(text: str) -> Any:
    """``json.loads`` at orjson's speed, for text without a run of 19 digits (see
    :func:`item_parser`). What orjson refuses and ``json`` accepts (``NaN``, ``Infinity``,
    ``1e400``, lone surrogates) is read by ``json``, which also words the error for text that
    is not JSON."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def item_parser(data: bytes) -> Callable[[str], Any]:
    """What reads the items of ``data`` exactly as ``json.loads`` would: :func:`fast_loads`,
    unless a run of 19 digits somewhere in it might be an integer orjson would turn into a
    float (one pass over the batch's bytes, a few percent of orjson's time)."""
    return json.loads if _LONG_NUMBER in data.translate(_DIGITS) else fast_loads


def read_batch(storage: Storage, spec: BatchSpec) -> tuple[list[str], Callable[[str], Any]]:
    """The lines of one batch (one item each), read from its byte range, and what parses each
    one (:func:`item_parser`). A batch's bytes are decoded as UTF-8 at once (a
    :class:`TaskError` naming the batch if they are not)."""
    with storage.local_path(spec.source).open("rb") as stream:
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
    return lines, item_parser(data)


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
