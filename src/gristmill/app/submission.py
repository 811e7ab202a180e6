"""Submit runs, wait for them and read their state and results, from Python.

These three functions are the one way in: the CLI, the web layer, the tests and the benchmarks
all go through them.

>>> run_id = submit("wordcount", ["report.txt"], {"top": 5})
>>> status = wait(run_id, timeout=60)
>>> status.state, status.steps[-1].result
"""

from __future__ import annotations

import contextlib
import io
import json
import mimetypes
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from gristmill.app.quotas import refusal, user_submitter
from gristmill.app.service import Service, default_service
from gristmill.authoring.context import InputFile
from gristmill.authoring.fingerprints import pipeline_version
from gristmill.authoring.inputs import (
    InputKind,
    InputSource,
    JsonInput,
    LocalFile,
    RunItems,
    RunOutputs,
    TextInput,
    Upload,
    UrlInput,
    safe_name,
)
from gristmill.authoring.pipelines import PREVIOUS, Pipeline
from gristmill.authoring.validation import (
    check_input_content,
    check_input_count,
    check_input_kind,
    run_validators,
    size_limit_message,
    validate_params,
)
from gristmill.errors import (
    FetchError,
    NotFoundError,
    PipelineNotFoundError,
    QuotaError,
    SubmissionError,
    SubmissionTooLargeError,
    TooLargeError,
)
from gristmill.states import RunState, StepState
from gristmill.store.base import QuotaExceededError
from gristmill.store.records import (
    Claim,
    InputRecord,
    NewRun,
    OutputRecord,
    QuotaLimits,
    RunRecord,
    StepRecord,
)


@dataclass
class StepStatus:
    """One step of a run, as shown to users."""

    name: str
    title: str
    state: StepState
    attempt: int | None = None
    duration: float | None = None
    error: str | None = None
    result: Any = None
    outputs: list[OutputRecord] = field(default_factory=list)
    started_at: float | None = None
    """When the step's latest attempt started (seconds since the epoch)."""
    finished_at: float | None = None
    """When it ended."""
    fingerprint: dict[str, Any] | None = None
    """What its result was computed from (a stored :class:`Fingerprint`)."""


@dataclass
class RunStatus:
    """A run's state, steps and results."""

    run: RunRecord
    steps: list[StepStatus]

    @property
    def id(self) -> str:
        return self.run.id

    @property
    def state(self) -> RunState:
        return self.run.state

    @property
    def error(self) -> str | None:
        return self.run.error_message

    @property
    def outputs(self) -> list[OutputRecord]:
        return [output for step in self.steps for output in step.outputs]

    @property
    def version(self) -> str | None:
        """The version of the pipeline's code the run ran (see
        :func:`~gristmill.authoring.fingerprints.pipeline_version`): ``None`` until every step
        has run."""
        return pipeline_version((step.name, step.fingerprint) for step in self.steps)

    def result(self, step: str) -> Any:
        """The stored result of ``step`` (``KeyError`` if there is no such step)."""
        for status in self.steps:
            if status.name == step:
                return status.result
        raise KeyError(step)


def _open_source(
    source: InputSource, stack: ExitStack
) -> tuple[str, IO[bytes], str, str | None, str]:
    """(name, stream, kind, media type, source description) of one input."""
    if isinstance(source, str | Path):
        source = LocalFile(Path(source))
    if isinstance(source, LocalFile):
        path = source.path
        try:
            stream = stack.enter_context(path.open("rb"))
        except (FileNotFoundError, IsADirectoryError, PermissionError) as error:
            reason = error.strerror.lower() if error.strerror else "cannot be read"
            # A server-side file (a data file, an earlier output) is named by what it is,
            # never by its path on the server.
            label = source.source or str(path)
            raise SubmissionError({"inputs": [f"{label}: {reason}"]}) from None
        name = source.name or path.name
        return name, stream, source.kind, source.media_type, source.source
    if isinstance(source, Upload):
        return source.name, source.stream, source.kind, source.media_type, source.source
    if isinstance(source, JsonInput):
        try:
            data = json.dumps(source.value, allow_nan=False).encode()
        except (TypeError, ValueError) as error:
            raise SubmissionError(
                {"inputs": [f"the JSON input cannot be encoded: {error}"]}
            ) from None
        return source.name, io.BytesIO(data), InputKind.JSON, "application/json", ""
    if isinstance(source, TextInput):
        return source.name, io.BytesIO(source.text.encode()), InputKind.TEXT, "text/plain", ""
    raise SubmissionError({"inputs": [f"cannot use {type(source).__name__} as an input"]})


def _earlier_outputs(service: Service, source: RunOutputs) -> list[LocalFile]:
    """The output files of an earlier run, as inputs (the caller checked it may see the run)."""
    try:
        run, steps = service.store.get_run_and_steps(source.run_id)
    except NotFoundError:
        raise SubmissionError({"inputs": [f"no run with id {source.run_id!r}"]}) from None
    if run.state != RunState.SUCCEEDED:
        raise SubmissionError(
            {"inputs": [f"run {run.id} has not succeeded (it is {run.state}); use a run that has"]}
        )
    outputs = [
        output
        for step in steps.values()
        if source.step is None or step.name == source.step
        for output in step.outputs
    ]
    if not outputs:
        where = f"step {source.step!r} of run {run.id}" if source.step else f"run {run.id}"
        raise SubmissionError({"inputs": [f"{where} has no output files"]})
    for output in outputs:
        if not service.storage.exists(output.path):
            message = f"the output {output.name!r} of run {run.id} is not stored any more"
            raise SubmissionError({"inputs": [message]})
    return [
        LocalFile(
            service.storage.local_path(output.path),
            name=output.name,
            media_type=output.media_type,
            kind=InputKind.RUN,
            source=f"run {run.id}: {output.step}/{output.name}",
        )
        for output in outputs
    ]


def _expand(service: Service, sources: Sequence[InputSource]) -> list[InputSource]:
    expanded: list[InputSource] = []
    for source in sources:
        if isinstance(source, RunOutputs):
            expanded.extend(_earlier_outputs(service, source))
        else:
            expanded.append(source)
    return expanded


def _to_fetch(service: Service, pipeline: Pipeline, source: UrlInput) -> InputRecord:
    """A URL input as recorded at submission: its URL, to be fetched by the run's worker
    (:mod:`gristmill.engine.fetching`), so that a slow server holds no request thread. What
    can be refused without the network is refused here: a pipeline that takes no URLs, a
    malformed URL, an address that is not public."""
    from gristmill.engine.fetcher import check_literal_address, check_url, parse_networks  # httpx

    check_input_kind(pipeline, InputKind.URL, source.url)
    try:
        url = check_url(source.url)
        check_literal_address(url, parse_networks(",".join(service.settings.fetch_allow)))
    except FetchError as error:
        raise SubmissionError({"inputs": [error.message]}) from None
    parts = urlsplit(url)
    name = safe_name(parts.path.rsplit("/", 1)[-1] or parts.hostname or "download")
    return InputRecord(name, "", 0, "", "application/octet-stream", InputKind.URL, url)


FILTERED_NAME = "items.jsonl"
"""The name of a filtered run's input."""


def _to_filter(service: Service, pipeline: Pipeline, source: RunItems) -> InputRecord:
    """An items input as recorded at submission: its filter, applied by the run's worker
    (:mod:`gristmill.engine.filtering`), so that a million-item source holds no request thread.
    What can be refused without reading the items is refused here: a pipeline that takes no
    items, a malformed filter, a source run that does not exist, has expired or whose step is
    not an ended map step. (The caller checked that the submitter may see the source run.)"""
    from gristmill.authoring.filters import ItemFilter, parse_path
    from gristmill.authoring.maps import MapTask

    check_input_kind(pipeline, InputKind.ITEMS, FILTERED_NAME)

    def refuse(message: str) -> SubmissionError:
        return SubmissionError({"inputs": [message]})

    if (source.where is None) == (source.finding is None):
        raise refuse("an items input takes a path and a value (where), or a finding kind")
    if source.where is not None:
        try:
            parse_path(source.where)
        except ValueError as error:
            raise refuse(str(error)) from None
        try:
            json.dumps(source.value, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise refuse(f"the value to match is not JSON: {error}") from None
    elif not isinstance(source.finding, str) or not source.finding:
        raise refuse("the finding kind must be a non-empty string")
    try:
        run = service.store.get_run(source.run_id)
    except NotFoundError:
        raise refuse(f"no run with id {source.run_id!r}") from None
    if run.state == RunState.EXPIRED:
        raise refuse(f"run {run.id} has expired: its items are gone")
    try:
        earlier = service.registry.get(run.pipeline)
    except NotFoundError:
        raise refuse(f"the pipeline {run.pipeline!r} of run {run.id} is not offered") from None
    maps = [task for task in earlier.steps if isinstance(task, MapTask)]
    names = ", ".join(f"`{task.step_name}`" for task in maps) or "none"
    if source.step is None:
        unpaired = [task for task in maps if task.pair_with_ancestor is None]
        if len(unpaired) != 1:
            raise refuse(f"name the map step whose items to take (run {run.id} has: {names})")
        task = unpaired[0]
    else:
        found = [task for task in maps if task.step_name == source.step]
        if not found:
            raise refuse(f"run {run.id} has no map step {source.step!r} (its map steps: {names})")
        task = found[0]
    if task.pair_with_ancestor is not None:
        raise refuse(f"step `{task.step_name}` pairs items with an ancestor's; name another")
    status = {m.step: m for m in service.store.map_status(run.id)}.get(task.step_name)
    if status is None or status.remaining:
        raise refuse(f"the items of step `{task.step_name}` of run {run.id} are not all checked")
    spec = ItemFilter(run.id, task.step_name, source.where, source.value, source.finding)
    media = "application/x-ndjson"
    return InputRecord(FILTERED_NAME, "", 0, "", media, InputKind.ITEMS, spec.to_source())


def _stage_inputs(
    service: Service, pipeline: Pipeline, run_id: str, sources: Sequence[InputSource]
) -> list[InputRecord]:
    records = []
    with ExitStack() as stack:
        for position, source in enumerate(sources):
            if isinstance(source, UrlInput):
                records.append(_to_fetch(service, pipeline, source))
                continue
            if isinstance(source, RunItems):
                records.append(_to_filter(service, pipeline, source))
                continue
            raw_name, stream, kind, media_type, origin = _open_source(source, stack)
            name = safe_name(raw_name)
            check_input_kind(pipeline, str(kind), name)
            try:
                path, size, digest = service.storage.save_input(
                    run_id, position, name, stream, max_size=pipeline.inputs.max_size
                )
            except TooLargeError:
                raise SubmissionTooLargeError(
                    {"inputs": [size_limit_message(pipeline, name)]}
                ) from None
            checked, media_type = check_input_content(
                pipeline, str(kind), name, service.storage.local_path(path), media_type
            )
            if checked != name:  # named by its content
                name, path = checked, service.storage.rename(path, checked)
            guessed = media_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
            records.append(InputRecord(name, path, size, digest, guessed, str(kind), origin))
    return records


def submit(
    pipeline: str | Pipeline,
    inputs: Sequence[InputSource] = (),
    params: Mapping[str, Any] | None = None,
    *,
    owner_id: int | None = None,
    ancestor: str | None = None,
    service: Service | None = None,
    submitter: str | None = None,
    quota: QuotaLimits | None = None,
) -> str:
    """Check and store a new run, queue it, and return its id.

    Every check (input count, kinds and sizes, parameters, validators) runs before anything is
    queued; a refusal raises :class:`~gristmill.errors.SubmissionError` with messages per field
    (:class:`~gristmill.errors.PipelineNotFoundError` for an unknown pipeline name,
    :class:`~gristmill.errors.SubmissionTooLargeError` for an input over the size limit)
    and leaves nothing behind. Once this returns, the run and its input bytes are committed;
    a URL input is committed as its URL, fetched by the run's worker before the first step
    (a fetch that fails, or a file the pipeline refuses, fails the run with the reason).

    ``submitter`` says who submits (default ``user:<owner_id>``), for the fair order of claims
    and for ``quota``: a submission that would take the submitter past it raises
    :class:`~gristmill.errors.QuotaError` (:class:`~gristmill.errors.StorageQuotaError` for
    storage) and stores nothing.
    """
    run_id, _ = create(
        pipeline,
        inputs,
        params,
        owner_id=owner_id,
        ancestor=ancestor,
        service=service,
        submitter=submitter,
        quota=quota,
    )
    return run_id


def _account(
    new_run: NewRun, submitter: str | None, quota: QuotaLimits | None, runs: Sequence[NewRun]
) -> NewRun:
    """``new_run`` with its submitter, priority and (for the first run of a submission of
    ``runs``) its quota, counting all of them."""
    if submitter is None and new_run.owner_id is not None:
        submitter = user_submitter(new_run.owner_id)
    if quota is not None:
        added = sum(i.size for run in runs for i in run.inputs)
        quota = replace(quota, runs=len(runs), new_bytes=added)
    return replace(new_run, submitter=submitter, quota=quota)


def _refused(service: Service, run: NewRun) -> QuotaError:
    assert run.submitter is not None and run.quota is not None
    return refusal(service.store, run.submitter, run.quota)


def create(
    pipeline: str | Pipeline,
    inputs: Sequence[InputSource] = (),
    params: Mapping[str, Any] | None = None,
    *,
    owner_id: int | None = None,
    ancestor: str | None = None,
    service: Service | None = None,
    claimed_by: str | None = None,
    lease: float = 30.0,
    submitter: str | None = None,
    quota: QuotaLimits | None = None,
) -> tuple[str, Claim | None]:
    """:func:`submit`, optionally handing the run's first unit straight to ``claimed_by``
    (the inline executor), so that no worker sharing the database can take it."""
    service = service or default_service()
    pipeline = _pipeline(service, pipeline)
    run_id = str(uuid.uuid4())
    try:
        new_run = _prepare(service, pipeline, run_id, inputs, params, owner_id, ancestor)
        new_run = _account(new_run, submitter, quota, [new_run])
        try:
            claim = service.store.create_run(replace(new_run, claimed_by=claimed_by, lease=lease))
        except QuotaExceededError:
            raise _refused(service, new_run) from None
    except BaseException:
        with contextlib.suppress(OSError):  # best effort: the error that got us here matters
            service.storage.delete_run(run_id)
        raise
    return run_id, claim


MAX_BULK_ENTRIES = 1000
"""The most runs one :func:`submit_many` call (and one bulk API request) may submit."""


@dataclass
class Entry:
    """One run of a bulk submission (:func:`submit_many`): its inputs, parameters and
    ancestor, as :func:`submit` takes them."""

    inputs: Sequence[InputSource] = ()
    params: Mapping[str, Any] | None = None
    ancestor: str | None = None


def submit_many(
    pipeline: str | Pipeline,
    entries: Sequence[Entry],
    *,
    owner_id: int | None = None,
    service: Service | None = None,
    submitter: str | None = None,
    quota: QuotaLimits | None = None,
) -> list[str]:
    """Check and store many runs of one pipeline in one transaction, queue them, and return
    their ids in the order of ``entries``.

    Each entry is checked as :func:`submit` checks a run. All or nothing: if any entry is
    refused, nothing is stored and :class:`~gristmill.errors.SubmissionError` names every
    problem under ``entries.<index>.<field>`` (``entries.3.params.top``); more than
    :data:`MAX_BULK_ENTRIES` entries, or none, is refused under ``entries``. A ``quota``
    counts every entry (:class:`~gristmill.errors.QuotaError`, nothing stored).
    """
    service = service or default_service()
    pipeline = _pipeline(service, pipeline)
    if not entries:
        raise SubmissionError({"entries": ["give at least one entry"]})
    if len(entries) > MAX_BULK_ENTRIES:
        raise SubmissionError(
            {"entries": [f"at most {MAX_BULK_ENTRIES} entries at once; {len(entries)} given"]}
        )
    run_ids = [str(uuid.uuid4()) for _ in entries]
    problems: dict[str, list[str]] = {}
    too_large = True
    try:
        runs = []
        for index, (run_id, entry) in enumerate(zip(run_ids, entries, strict=True)):
            try:
                runs.append(
                    _prepare(
                        service,
                        pipeline,
                        run_id,
                        entry.inputs,
                        entry.params,
                        owner_id,
                        entry.ancestor,
                    )
                )
            except SubmissionError as error:
                too_large = too_large and isinstance(error, SubmissionTooLargeError)
                for name, messages in error.errors.items():
                    problems.setdefault(f"entries.{index}.{name}", []).extend(messages)
        if problems:
            raise (SubmissionTooLargeError if too_large else SubmissionError)(problems)
        runs = [_account(run, submitter, None, runs) for run in runs]
        runs[0] = _account(runs[0], submitter, quota, runs)
        try:
            service.store.create_runs(runs)
        except QuotaExceededError:
            raise _refused(service, runs[0]) from None
    except BaseException:
        for run_id in run_ids:
            with contextlib.suppress(OSError):  # best effort, as in create()
                service.storage.delete_run(run_id)
        raise
    return run_ids


def _pipeline(service: Service, pipeline: str | Pipeline) -> Pipeline:
    if isinstance(pipeline, str):
        try:
            return service.registry.get(pipeline)
        except LookupError as error:
            raise PipelineNotFoundError({"pipeline": [str(error.args[0])]}) from None
    return pipeline


def _prepare(
    service: Service,
    pipeline: Pipeline,
    run_id: str,
    inputs: Sequence[InputSource],
    params: Mapping[str, Any] | None,
    owner_id: int | None,
    ancestor: str | None,
) -> NewRun:
    """Check one submission and stage its inputs; the run as the store is to create it."""
    if isinstance(inputs, str | Path | Upload | JsonInput | TextInput | LocalFile | UrlInput):
        inputs = [inputs]
    if isinstance(inputs, RunOutputs | RunItems):
        inputs = [inputs]
    inputs = _expand(service, inputs)
    check_input_count(pipeline, len(inputs))
    model = validate_params(pipeline, params)
    records = _stage_inputs(service, pipeline, run_id, inputs)
    files = [
        InputFile(
            r.name,
            service.storage.local_path(r.path),
            r.size,
            r.sha256,
            r.media_type,
            r.kind,
            r.source,
        )
        for r in records
        if not r.awaiting_fetch  # checked by the worker once fetched
    ]
    run_validators(pipeline, files)
    ancestor = _ancestor(service, pipeline, ancestor, owner_id, records)
    return NewRun(
        id=run_id,
        pipeline=pipeline.name,
        queue=pipeline.queue,
        params=model.model_dump(mode="json"),
        inputs=records,
        expires_at=datetime.now(UTC) + pipeline.retention,
        max_attempts=pipeline.max_attempts,
        owner_id=owner_id,
        ancestor_id=ancestor,
        priority=pipeline.priority,
    )


_RUN_URL = re.compile(r"/runs/(?P<id>[0-9a-fA-F-]{32,36})(?:/|$)")


def ancestor_id(text: str) -> str:
    """The run id in ``text``: a run's id, or the address of its page or API resource
    (``https://host/runs/<id>/``); :class:`SubmissionError` at ``ancestor`` if it has none."""
    text = text.strip()
    candidate = text
    if "/" in text:
        found = _RUN_URL.search(urlsplit(text).path)
        candidate = found.group("id") if found else ""
    try:
        return str(uuid.UUID(candidate))
    except ValueError:
        raise SubmissionError(
            {"ancestor": [f"{text!r} is neither a run id nor a run's address"]}
        ) from None


def _ancestor(
    service: Service,
    pipeline: Pipeline,
    given: str | None,
    owner_id: int | None,
    inputs: Sequence[InputRecord],
) -> str | None:
    """The checked id of the run's ancestor: the one given, or with ``ancestor="previous"``
    the previous run of the same source by the same owner (none for a submitter without an
    account, a run without inputs, or a filtered run: two filters' items are not one source
    seen twice)."""
    if given is None or not given.strip():
        if pipeline.ancestor != PREVIOUS or owner_id is None or not inputs:
            return None
        if inputs[0].kind == InputKind.ITEMS:
            return None
        return service.store.previous_run(pipeline.name, owner_id, inputs[0])
    run_id = ancestor_id(given)
    try:
        run = service.store.get_run(run_id)
    except NotFoundError:
        raise SubmissionError({"ancestor": [f"no run with id {run_id!r}"]}) from None
    if run.pipeline not in pipeline.ancestors_from:
        takes = ", ".join(repr(name) for name in pipeline.ancestors_from)
        raise SubmissionError(
            {
                "ancestor": [
                    f"run {run_id} is a run of {run.pipeline!r}; the ancestor of a run of "
                    f"{pipeline.name!r} must be a run of {takes}"
                ]
            }
        )
    if run.state != RunState.SUCCEEDED:
        raise SubmissionError(
            {
                "ancestor": [
                    f"run {run_id} has not succeeded (it is {run.state}); choose a run that has"
                ]
            }
        )
    return run_id


def _step_statuses(
    pipeline: Pipeline | None, run: RunRecord, stored: Mapping[str, StepRecord]
) -> list[StepStatus]:
    if run.state == RunState.EXPIRED:
        # Expiry removed the steps' records; the pipeline's step names would read as "pending".
        return []
    names = pipeline.step_names if pipeline is not None else tuple(stored)
    statuses = []
    for name in names:
        title = name
        if pipeline is not None:
            title = pipeline.step(name).title or name
        record = stored.get(name)
        if run.state == RunState.RUNNING and run.current_step == name:
            state = StepState.RUNNING
        elif record is not None:
            state = StepState(record.state)
        elif run.state == RunState.CANCELLED:
            state = StepState.CANCELLED
        else:
            state = StepState.PENDING
        status = StepStatus(name, title, state)
        if record is not None:
            status.attempt = record.attempt
            status.error = record.error
            status.result = record.result
            status.outputs = record.outputs
            status.started_at = record.started_at
            status.finished_at = record.finished_at
            status.fingerprint = record.fingerprint
            if record.started_at is not None and record.finished_at is not None:
                status.duration = record.finished_at - record.started_at
        statuses.append(status)
    return statuses


def get_run(run_id: str, *, service: Service | None = None) -> RunStatus:
    """Return the run's state, its steps (with results and outputs) and its error, if any.

    An expired run has no steps: expiry removed them with its results and files.

    Raises :class:`~gristmill.errors.NotFoundError` for an unknown id.
    """
    service = service or default_service()
    return _status(service, *service.store.get_run_and_steps(run_id))


def _status(service: Service, run: RunRecord, steps: dict[str, StepRecord]) -> RunStatus:
    registry = service.registry
    pipeline = registry.get(run.pipeline) if run.pipeline in registry else None
    return RunStatus(run, _step_statuses(pipeline, run, steps))


def get_runs(run_ids: Sequence[str], *, service: Service | None = None) -> list[RunStatus]:
    """:func:`get_run` of each of ``run_ids``, in that order, read together (a few queries
    for thousands of runs). Raises :class:`~gristmill.errors.NotFoundError` for an unknown id.
    """
    service = service or default_service()
    return [_status(service, *loaded) for loaded in service.store.get_runs_and_steps(run_ids)]


def wait(
    run_id: str,
    timeout: float | None = None,
    *,
    service: Service | None = None,
    on_update: Callable[[RunRecord], None] | None = None,
    poll: float = 0.5,
) -> RunStatus:
    """Block until the run reaches a terminal state, and return its status.

    Raises :class:`TimeoutError` if ``timeout`` seconds pass first. ``on_update`` is called with
    the run each time it is looked at (for progress displays, at most every ``poll`` seconds).
    """
    service = service or default_service()
    store = service.store
    deadline = None if timeout is None else time.monotonic() + timeout
    store.wait_for_done(0)  # start listening before the first look, so no ring is missed
    while True:
        status = get_run(run_id, service=service)  # one query: state, steps and results
        if on_update is not None:
            on_update(status.run)
        if status.state.is_terminal:
            return status
        remaining = poll if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"run {run_id} did not finish within {timeout:g} s")
        store.wait_for_done(min(poll, remaining))


def wait_many(
    run_ids: Sequence[str],
    timeout: float | None = None,
    *,
    service: Service | None = None,
    poll: float = 0.5,
    settle: float = 0.05,
) -> list[RunStatus]:
    """Block until every run of ``run_ids`` reaches a terminal state, and return their
    statuses in that order (the waiter of a :func:`submit_many`).

    Looks at the unfinished runs in one query at a time: when a run ends, and at least every
    ``poll`` seconds. Runs ending in a burst are looked at together, at most every ``settle``
    seconds, so that a waiter of thousands of short runs does not slow the workers down by
    asking after each. Raises :class:`TimeoutError` if ``timeout`` seconds pass first, and
    :class:`~gristmill.errors.NotFoundError` for an unknown id.
    """
    service = service or default_service()
    store = service.store
    deadline = None if timeout is None else time.monotonic() + timeout
    store.wait_for_done(0)  # start listening before the first look, so no ring is missed
    pending = list(run_ids)
    while True:
        pending = store.unfinished(pending)
        if not pending:
            return get_runs(run_ids, service=service)
        remaining = poll if deadline is None else deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(
                f"{len(pending)} of {len(run_ids)} runs did not finish within {timeout:g} s"
            )
        looked = time.monotonic()
        store.wait_for_done(min(poll, remaining))
        # Rate limit, not synchronisation: the next look happens after the bell in any case.
        time.sleep(max(0.0, min(settle - (time.monotonic() - looked), remaining)))
