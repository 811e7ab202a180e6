"""Pipelines: what this server offers, and submitting a run to one."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Status

from gristmill.app.service import default_service
from gristmill.app.submission import Entry, submit, submit_many
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.validation import validate_params
from gristmill.errors import NotFoundError, PipelineNotFoundError, SubmissionError
from gristmill.server import notifications
from gristmill.server.access import may_see_pipeline, usable_pipeline
from gristmill.server.api.auth import caller_of
from gristmill.server.api.schemas import (
    BulkSubmitted,
    ErrorOut,
    PipelineOut,
    SubmittedRun,
    run_links,
)
from gristmill.server.api.submissions import (
    BULK_BODY_DOC,
    REQUEST_BODY_DOC,
    read_bulk,
    read_submission,
)
from gristmill.server.links import api_path
from gristmill.server.quotas import account_of

router = Router(tags=["pipelines"])


def describe(pipeline: Pipeline) -> PipelineOut:
    """The pipeline as the API shows it: what a client needs to submit a run."""
    submit_url = api_path(f"pipelines/{pipeline.name}/runs")
    return PipelineOut.model_validate({**pipeline.describe(), "submit_url": submit_url})


@router.get("", response=list[PipelineOut])
def list_pipelines(request: HttpRequest) -> list[PipelineOut]:
    """List the pipelines this server offers, with the inputs they accept and the JSON Schema
    of their parameters."""
    caller = caller_of(request)
    return [
        describe(pipeline)
        for pipeline in default_service().registry
        if may_see_pipeline(caller, pipeline)
    ]


@router.get("/{name}", response={200: PipelineOut, 404: ErrorOut})
def get_pipeline(request: HttpRequest, name: str) -> PipelineOut:
    """Describe one pipeline: its steps, accepted inputs and parameter schema."""
    pipeline = default_service().registry.get(name)
    if not may_see_pipeline(caller_of(request), pipeline):
        raise NotFoundError(f"no pipeline named {name!r}")
    return describe(pipeline)


@router.post(
    "/{name}/runs",
    response={
        201: SubmittedRun,
        400: ErrorOut,
        401: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },
    openapi_extra={"requestBody": REQUEST_BODY_DOC},
)
def submit_run(request: HttpRequest, name: str) -> Status[SubmittedRun]:
    """Submit a run to a pipeline, and answer its id and links (201).

    Send either a JSON body, ``{"params": {...}, "inputs": [{"kind": "json", "value": ...},
    {"kind": "text", "text": "..."}]}``, or a ``multipart/form-data`` form with the files in
    ``files`` and the parameters as a JSON object in ``params``.

    Everything is checked before the run is queued: unknown or invalid parameters, input kinds,
    file types, counts and validators answer 400 with a message per field, an unknown pipeline
    404, and an input over the pipeline's size limit 413. A caller at a quota of runs
    (concurrent, or per day) is answered 429 with Retry-After, one at its storage quota 413;
    the message names the quota, the usage and when it frees up, and nothing is stored. Once
    this answers 201, the run and its inputs are stored.
    """
    service = default_service()
    caller = caller_of(request)
    try:
        pipeline = usable_pipeline(caller, service, name)
    except NotFoundError as error:  # named as the field at fault, like every refusal
        raise PipelineNotFoundError({"pipeline": [str(error)]}) from None
    submission = read_submission(request, caller=caller, service=service)
    params = submission.params
    validate_params(pipeline, params, strict=True)  # JSON values: no "5" for 5, no 1 for true
    wishes = notifications.check_wishes(service.settings, caller, submission.wishes)
    account = account_of(request, caller)
    run_id = submit(
        pipeline,
        submission.inputs,
        params,
        owner_id=caller.user_id,
        ancestor=submission.ancestor,
        service=service,
        submitter=account.submitter,
        quota=account.limits,
    )
    notifications.record(service.settings, run_id, pipeline, caller, wishes)
    return Status(201, SubmittedRun(id=run_id, **run_links(run_id)))


@router.post(
    "/{name}/runs/bulk",
    response={
        201: BulkSubmitted,
        400: ErrorOut,
        401: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        429: ErrorOut,
        503: ErrorOut,
    },
    openapi_extra={"requestBody": BULK_BODY_DOC},
)
def submit_runs(request: HttpRequest, name: str) -> Status[BulkSubmitted]:
    """Submit many runs of a pipeline in one transaction, and answer their ids and links in
    the order of the entries (201).

    Send a JSON body ``{"entries": [{"params": {...}, "inputs": [...]}, ...]}``: each entry is
    what a JSON submission to ``/pipelines/{name}/runs`` takes (``ancestor``, ``notify_email``
    and ``webhook_url`` too), and each run is notified as a single submission's run is (its
    pipeline's and the site's webhooks included). Each entry is checked as a
    single submission is; if any is refused, none is stored and the answer (400, or 413 for
    inputs over the size limit) names each problem under ``entries.<index>.<field>``. Every
    entry counts against the caller's quotas (429 or 413 as for one run; nothing stored).
    """
    service = default_service()
    caller = caller_of(request)
    try:
        pipeline = usable_pipeline(caller, service, name)
    except NotFoundError as error:
        raise PipelineNotFoundError({"pipeline": [str(error)]}) from None
    read = read_bulk(request, caller=caller, service=service)
    problems: dict[str, list[str]] = {}
    wishes: list[notifications.Wishes] = []
    for index, submission in enumerate(read):
        try:
            validate_params(pipeline, submission.params, strict=True)
        except SubmissionError as error:
            for field, messages in error.errors.items():
                problems[f"entries.{index}.{field}"] = messages
        try:
            wishes.append(notifications.check_wishes(service.settings, caller, submission.wishes))
        except SubmissionError as error:
            for field, messages in error.errors.items():
                problems[f"entries.{index}.{field}"] = messages
    if problems:
        raise SubmissionError(problems)
    entries = [Entry(s.inputs, s.params, s.ancestor) for s in read]
    account = account_of(request, caller)
    run_ids = submit_many(
        pipeline,
        entries,
        owner_id=caller.user_id,
        service=service,
        submitter=account.submitter,
        quota=account.limits,
    )
    notifications.record_many(service.settings, run_ids, pipeline, caller, wishes)
    runs = [SubmittedRun(id=run_id, **run_links(run_id)) for run_id in run_ids]
    return Status(201, BulkSubmitted(runs=runs, count=len(runs)))
