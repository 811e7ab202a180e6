"""What the API sends, as pydantic models.

These models are the API's contract and its OpenAPI document: views build them, ninja checks
them on the way out. Submissions are read in :mod:`gristmill.server.api.submissions`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field

from gristmill.server.links import api_path, run_page
from gristmill.states import RunState, StepState

MAX_FAILED_BATCHES = 100
"""The most failed batches a run's status lists per map step (the count says how many)."""
MAX_FAILED_ITEMS = 20
"""The most failed items a run's status lists per batch (the count says how many)."""


class Out(BaseModel):
    """The base of every answer's model.

    Plain pydantic rather than ninja's ``Schema``: views build these models themselves, so
    ninja's per-field getter (for reading Django model instances) would only cost time, a
    seventh of a status read's instructions.
    """

    model_config = ConfigDict(from_attributes=True)


class RunLinkFields(TypedDict):
    """The links of a run, as keyword arguments for the schemas that carry them."""

    url: str
    status_url: str
    log_url: str
    results_url: str
    outputs_url: str
    outputs_zip_url: str


def run_links(run_id: str) -> RunLinkFields:
    """The links of the run ``run_id``: its page, and its API resources."""
    base = api_path(f"runs/{run_id}")
    return {
        "url": run_page(run_id),
        "status_url": base,
        "log_url": f"{base}/log",
        "results_url": f"{base}/results",
        "outputs_url": f"{base}/outputs",
        "outputs_zip_url": f"{base}/outputs.zip",
    }


class ErrorDetail(Out):
    code: str = Field(description="not_found, invalid, conflict, too_large, unavailable, ...")
    message: str = Field(description="One sentence for humans.")
    details: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Messages by field (dotted path), when a field is at fault.",
    )


class ErrorOut(Out):
    """Every 4xx and 5xx answer."""

    error: ErrorDetail


# -- pipelines ----------------------------------------------------------------------------


class StepInfo(Out):
    name: str
    title: str


class InputSpec(Out):
    kinds: list[str] = Field(description="Input kinds offered: file, json, text, ...")
    extensions: list[str] | None = Field(description="Accepted file extensions; null: any.")
    max_size: int = Field(description="Largest accepted input, in bytes.")
    min_count: int
    max_count: int


class PipelineOut(Out):
    name: str
    title: str
    description: str
    steps: list[StepInfo]
    inputs: InputSpec
    params_schema: dict[str, Any] = Field(description="JSON Schema of the parameters.")
    queue: str
    retention_seconds: int
    access: str = Field(description="Who may submit: anyone, signed-in or staff.")
    submit_url: str


# -- runs ---------------------------------------------------------------------------------


class RunLinks(Out):
    url: str = Field(description="The run's page.")
    status_url: str
    log_url: str
    results_url: str
    outputs_url: str
    outputs_zip_url: str


class SubmittedRun(RunLinks):
    """The answer to an accepted submission."""

    id: str


class BulkSubmitted(Out):
    """The answer to an accepted bulk submission: the runs, in the order of the entries."""

    runs: list[SubmittedRun]
    count: int


class Progress(Out):
    done: int
    total: int | None


class RunError(Out):
    message: str = Field(description="What went wrong, for the user.")
    reference: str | None = Field(description="Set for internal errors: quote it to staff.")
    traceback: str | None = Field(None, description="The internal error's traceback (staff only).")


class StepOut(Out):
    name: str
    title: str
    state: StepState
    attempt: int | None
    duration: float | None = Field(description="Seconds the step took.")
    error: str | None
    started_at: datetime | None = Field(None, description="When its latest attempt started.")
    finished_at: datetime | None = Field(None, description="When its latest attempt ended.")


class AncestorOut(Out):
    id: str
    url: str = Field(description="The ancestor's page.")
    status_url: str


class InputDigestOut(Out):
    name: str
    kind: str = Field(description="`file`, `url`, `datafile`...: how the input was given.")
    size: int = Field(description="Bytes; 0 for a URL input not fetched yet.")
    sha256: str = Field(description="SHA-256 hex digest of its bytes; empty until fetched.")
    media_type: str


class FailedItemOut(Out):
    item: int = Field(description="The item's number (1 for the first item).")
    error: str


class FailedBatchOut(Out):
    number: int = Field(description="The batch's number (1 for the first batch).")
    first_item: int = Field(description="The number of its first item.")
    items: int = Field(description="How many items it holds.")
    state: str = Field(description="failed, or done for a batch that listed failed items.")
    error: str | None = Field(description="Why the batch failed, if it did.")
    failed_items: list[FailedItemOut] = Field(
        description=f"Its items that raised (the first {MAX_FAILED_ITEMS} of them)."
    )
    failed_items_total: int = Field(description="How many of its items raised.")


class MapOut(Out):
    """Where one map step is, summed over its batches: never a row per item."""

    step: str
    items_total: int
    items_done: int = Field(description="Items of the batches that ended done.")
    items_failed: int = Field(description="Items that raised, in batches that went on.")
    batches: dict[str, int] = Field(description="How many batches are pending, done, failed.")
    batches_total: int
    counts: dict[str, int] = Field(description="Findings by kind, over the batches done so far.")
    examples: dict[str, list[Any]] = Field(
        description="A few findings of each kind, from the batches done so far."
    )
    failed_batches: list[FailedBatchOut] = Field(
        description=f"The failed batches and those that listed failed items (the first "
        f"{MAX_FAILED_BATCHES}); retry them with POST /runs/{{id}}/retry-batches."
    )
    failed_batches_total: int
    partial: bool = Field(
        description="True while batches remain: counts and examples are those of the batches "
        "done so far. False once every batch has ended."
    )
    generation: int = Field(description="1, plus one for each retry of failed batches.")
    findings_url: str = Field(description="Its findings, a page at a time.")
    findings_jsonl_url: str = Field(description="All its findings as JSON Lines.")


class RunOut(RunLinks):
    id: str
    pipeline: str
    ancestor: AncestorOut | None = Field(
        None, description="The earlier run this run compares with, if it names one."
    )
    state: RunState
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    expires_at: datetime
    current_step: str | None
    stage: str | None
    progress: Progress | None
    error: RunError | None
    attempt: int = Field(description="The attempt number of the run's latest unit of work.")
    cancel_requested: bool = Field(
        description="Whether the run was asked to stop: it then ends `cancelled`."
    )
    cancel_requested_at: datetime | None = Field(description="When it was asked to stop.")
    cancel_requested_by: str | None = Field(
        description="Who asked it to stop: a user name, or null for someone not signed in."
    )
    interrupted_step: str | None = Field(
        description="The step that was running when a cancel stopped the run, if one was."
    )
    pinned: bool = Field(description="Kept past `expires_at` until unpinned.")
    version: str | None = Field(
        None,
        description="The version of the pipeline's code the run ran: a SHA-256 digest of its "
        "steps' code fingerprints; null until every step has run.",
    )
    params: dict[str, Any] = Field(
        default_factory=dict, description="The parameters the run was submitted with."
    )
    inputs: list[InputDigestOut] = Field(
        default_factory=list, description="The run's inputs with their SHA-256 digests."
    )
    steps: list[StepOut]
    maps: list[MapOut] = Field(
        description="Each map step that has started: items and batches done, findings by kind "
        "with examples (partial while batches remain), failed batches."
    )


class FindingOut(Out):
    item: int = Field(description="The item's number (1 for the first item).")
    batch: int
    kind: str
    finding: Any = Field(description="The finding as the step returned it.")


class FindingsOut(Out):
    findings: list[FindingOut]
    next: int | None = Field(
        description="Pass it as `after` to read on; null once there are no more."
    )


class RetriedOut(Out):
    batches: int = Field(description="How many batches were queued again.")
    state: RunState


class StateOut(Out):
    state: RunState


class PinOut(Out):
    pinned: bool = Field(description="Whether the run is kept past its expiry until unpinned.")


class LogLineOut(Out):
    id: int
    at: datetime
    step: str = Field(description="The step that wrote the line; empty for the system.")
    stream: str = Field(description="log, stdout, stderr or system.")
    text: str


class LogOut(Out):
    lines: list[LogLineOut]
    next: int = Field(description="Pass it as `after` to read on.")


class StepResultOut(Out):
    name: str
    title: str
    state: StepState
    context: Any = Field(description="What the step shows (its context()); null unless succeeded.")
    stale: bool = Field(
        description="Whether the step's stored result is out of date (code, version, parameters, "
        "inputs or an upstream result changed since it was made). False for a step that has no "
        "result yet, and when the check itself failed (logged with a reference)."
    )
    stale_reasons: list[str] = Field(
        description="Why the result is stale, in words: 'version of `b` 1 → 2', 'upstream step "
        "`b` was recomputed'. Empty when it is current."
    )


class ResultsOut(Out):
    state: RunState
    steps: list[StepResultOut]


class OutputOut(Out):
    step: str
    name: str
    size: int
    sha256: str
    media_type: str
    url: str


# -- data files ---------------------------------------------------------------------------


def datafile_links(file_id: str) -> dict[str, str]:
    """The API resources of the data file ``file_id``: its metadata and its bytes."""
    base = api_path(f"datafiles/{file_id}")
    return {"url": base, "content_url": f"{base}/content"}


class DataFileOut(Out):
    """A data file: a file a user keeps on the server to use as an input of runs."""

    id: str = Field(description="Give it as {'kind': 'datafile', 'id': ...} in a submission.")
    name: str
    size: int = Field(description="In bytes.")
    sha256: str
    media_type: str
    created_at: datetime
    owner: str = Field(description="The user name of its owner.")
    url: str = Field(description="This description.")
    content_url: str = Field(description="The file itself, to download.")
