"""A run's URL inputs, fetched by its worker before the first step.

A URL input is accepted at submission with its URL alone, so that a server that answers slowly
or never holds no request thread of the web server (promise 14): a fetch may take up to
``GRISTMILL_FETCH_TIMEOUT``, which is work, and work is done by workers. The run's first attempt
fetches each URL within the same limits as before (public addresses only, the pipeline's size
limit, the fetch timeout), stores the bytes as the run's input, checks the file against the
pipeline's input kinds and validators, and only then records it and starts the first step. An
attempt that finds its inputs stored fetches nothing.
"""

from __future__ import annotations

import mimetypes
import tempfile
from collections.abc import Callable
from typing import TypeVar

from gristmill.authoring.context import InputFile
from gristmill.authoring.inputs import InputKind, human_size, safe_name
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.validation import (
    check_input_content,
    check_input_kind,
    run_validators,
    size_limit_message,
)
from gristmill.errors import FetchError, SubmissionError, TaskError, TooLargeError
from gristmill.storage import Storage
from gristmill.store.records import InputRecord, RunRecord

Log = Callable[[str], None]
T = TypeVar("T")


def fetch_inputs(
    run: RunRecord,
    pipeline: Pipeline,
    storage: Storage,
    *,
    timeout: float,
    allow: tuple[str, ...],
    log: Log,
) -> dict[int, InputRecord]:
    """Fetch the run's inputs that await it (:attr:`InputRecord.awaiting_fetch`) into its
    input files, each within ``timeout`` seconds and the pipeline's size limit, reaching only
    public addresses and the networks in ``allow``; ``log`` gets a line per input.

    Returns the stored inputs by position. Raises :class:`TaskError`, with a message for the
    user naming the URL, for a fetch that fails and for a fetched file that the pipeline
    refuses (its type, its size, a validator); files stored so far stay with the run.
    """
    from gristmill.engine.fetcher import (  # httpx, only when needed
        FetchPolicy,
        fetch,
        parse_networks,
    )

    policy = FetchPolicy(
        max_size=pipeline.inputs.max_size, timeout=timeout, allow=parse_networks(",".join(allow))
    )
    fetched = {}
    for position, record in enumerate(run.inputs):
        if not record.awaiting_fetch or record.kind == InputKind.ITEMS:
            continue  # stored, or an items input (:mod:`gristmill.engine.filtering`)
        with tempfile.SpooledTemporaryFile(max_size=1 << 20) as spool:
            try:
                got = fetch(record.source, spool, policy)
            except FetchError as error:
                raise TaskError(error.message) from None
            spool.seek(0)
            name = safe_name(got.name)
            _refused_as_task_errors(check_input_kind, pipeline, str(InputKind.URL), name)
            try:
                path, size, digest = storage.save_input(
                    run.id, position, name, spool, max_size=pipeline.inputs.max_size
                )
            except TooLargeError:
                raise TaskError(size_limit_message(pipeline, name)) from None
        # The content (and the Content-Type) decide the type; a name without an extension
        # is given its content's.
        checked, said = _refused_as_task_errors(
            check_input_content,
            pipeline,
            str(InputKind.URL),
            name,
            storage.local_path(path),
            got.media_type,
        )
        if checked != name:
            name, path = checked, storage.rename(path, checked)
        media_type = said or mimetypes.guess_type(name)[0] or "application/octet-stream"
        stored = InputRecord(name, path, size, digest, media_type, record.kind, got.url)
        file = InputFile(
            name, storage.local_path(path), size, digest, media_type, record.kind, got.url
        )
        _refused_as_task_errors(run_validators, pipeline, [file])
        log(f"fetched {got.url} as {name} ({human_size(size)})")
        fetched[position] = stored
    return fetched


def _refused_as_task_errors(check: Callable[..., T], *args: object) -> T:
    # The checks made at submission refuse with a SubmissionError; here the run fails instead.
    try:
        return check(*args)
    except SubmissionError as error:
        raise TaskError("; ".join(m for ms in error.errors.values() for m in ms)) from None
