"""A filtered run's input: the items of an earlier run's map step that match a filter, chosen
by the new run's worker before its first step (as URL inputs are fetched), so that a source of
a million items never holds a request thread.

The source run's items are read again through the map step's own reader (from the source
run's stored inputs), one at a time; those that match are written, one JSON value per line,
as the new run's ``items.jsonl``. For a finding filter, the step's findings of that kind are
read from the store a page at a time, in item order, beside the items: memory stays bounded
whatever the number of items.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from gristmill.authoring.context import InputFile
from gristmill.authoring.filters import ItemFilter, parse_path, same_json, select
from gristmill.authoring.inputs import human_size
from gristmill.authoring.maps import MapTask
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.registry import Registry
from gristmill.authoring.validation import run_validators, size_limit_message
from gristmill.engine.mapping import StoreMapResults
from gristmill.engine.planner import RunView
from gristmill.errors import NotFoundError, SubmissionError, TaskError, TooLargeError
from gristmill.states import RunState
from gristmill.storage import Storage
from gristmill.store.base import Store
from gristmill.store.records import InputRecord, RunRecord


class _Lines(io.RawIOBase):
    """A binary stream over an iterator of byte strings (each a line)."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._rest = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._rest:
            try:
                self._rest = next(self._chunks)
            except StopIteration:
                return 0
        size = min(len(buffer), len(self._rest))
        buffer[:size] = self._rest[:size]
        self._rest = self._rest[size:]
        return size


def _source_items(
    spec: ItemFilter, store: Store, registry: Registry, storage: Storage
) -> Iterator[Any]:
    try:
        source = store.get_run(spec.run_id)
    except NotFoundError:
        raise TaskError(f"the source run {spec.run_id} is gone: it was deleted") from None
    if source.state == RunState.EXPIRED:
        raise TaskError(f"the source run {spec.run_id} has expired: its items are gone")
    try:
        pipeline = registry.get(source.pipeline)
    except NotFoundError:
        raise TaskError(
            f"the pipeline {source.pipeline!r} of run {source.id} is not offered"
        ) from None
    for task in pipeline.steps:
        if isinstance(task, MapTask) and task.step_name == spec.step:
            context = RunView(pipeline, source, storage, fetch=True).context(task, {})
            return task.reader().items(context)
    raise TaskError(f"the pipeline of run {source.id} has no map step {spec.step!r} any more")


def matching(spec: ItemFilter, store: Store, registry: Registry, storage: Storage) -> Iterator[Any]:
    """The items of the source run that match ``spec``, in their order."""
    items = _source_items(spec, store, registry, storage)
    if spec.finding is None:
        assert spec.where is not None
        path, value = parse_path(spec.where), spec.value
        for item in items:
            if same_json(select(item, path), value):
                yield item
        return
    wanted = (n for n, _ in StoreMapResults(store, spec.run_id).findings(spec.step, spec.finding))
    target = next(wanted, None)
    for number, item in enumerate(items, 1):
        if target is None:
            return
        if number == target:
            yield item
            while target is not None and target <= number:  # several findings of one item
                target = next(wanted, None)


def filter_inputs(
    run: RunRecord,
    pipeline: Pipeline,
    store: Store,
    registry: Registry,
    storage: Storage,
    log: Callable[[str], None],
) -> dict[int, InputRecord]:
    """Write the run's items inputs that await it; returns the stored inputs by position.
    Raises :class:`TaskError` with a message for the user (the source gone, no item matching,
    the file too large or refused by a validator)."""
    written = {}
    for position, record in enumerate(run.inputs):
        if not (record.awaiting_fetch and record.kind == "items"):
            continue
        spec = ItemFilter.from_source(record.source)
        count = 0

        def lines(spec: ItemFilter = spec) -> Iterator[bytes]:
            nonlocal count
            for item in matching(spec, store, registry, storage):
                count += 1
                yield json.dumps(item, separators=(",", ":"), ensure_ascii=False).encode() + b"\n"

        stream = io.BufferedReader(_Lines(lines()), buffer_size=1 << 16)
        try:
            path, size, digest = storage.save_input(
                run.id, position, record.name, stream, max_size=pipeline.inputs.max_size
            )
        except TooLargeError:
            raise TaskError(size_limit_message(pipeline, record.name)) from None
        where = f"step `{spec.step}` of run {spec.run_id}"
        if count == 0:
            raise TaskError(f"no item of {where} matches: {spec.describe()}")
        stored = InputRecord(
            record.name, path, size, digest, record.media_type, record.kind, record.source
        )
        file = InputFile(
            record.name,
            storage.local_path(path),
            size,
            digest,
            record.media_type,
            record.kind,
            record.source,
        )
        try:
            run_validators(pipeline, [file])
        except SubmissionError as error:
            raise TaskError("; ".join(m for ms in error.errors.values() for m in ms)) from None
        log(f"took {count} items of {where} {spec.describe()} ({human_size(size)})")
        written[position] = stored
    return written
