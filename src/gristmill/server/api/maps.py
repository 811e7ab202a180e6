"""Map steps of a run: their findings, a page at a time or as JSON Lines, and retrying their
failed batches. The run's status (``GET /runs/{id}``) carries each map step's summary
(:func:`map_outs`): counts, batch states and examples, never a row per item.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

from django.http import HttpRequest, StreamingHttpResponse
from ninja import P, QueryEx, Router, Status
from ninja.responses import NinjaJSONEncoder

from gristmill.app import maps
from gristmill.app.service import Service, default_service
from gristmill.app.submission import RunStatus
from gristmill.authoring.maps import MapTask
from gristmill.server import actions
from gristmill.server.access import visible_run
from gristmill.server.api.auth import caller_of
from gristmill.server.api.errors import ApiError
from gristmill.server.api.schemas import (
    MAX_FAILED_BATCHES,
    MAX_FAILED_ITEMS,
    ErrorOut,
    FailedBatchOut,
    FailedItemOut,
    FindingOut,
    FindingsOut,
    MapOut,
    RetriedOut,
)
from gristmill.server.links import api_path
from gristmill.store.records import FindingRecord, MapStatus

router = Router(tags=["maps"])

MAX_FINDINGS = 5000
"""The most findings one page holds; larger limits are capped to it."""
STREAM_PAGE = 2000
"""Findings read from the store at a time while streaming JSON Lines."""
_LARGEST_ID = 2**63 - 1
_NOT_FOUND = {404: ErrorOut}

_JSONL_DOC: dict[str, Any] = {
    "responses": {
        200: {
            "description": "One finding a line: {item, batch, kind, finding}, in item order.",
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    }
}


def findings_links(run_id: str, step: str) -> tuple[str, str]:
    """The API resources of the findings of map step ``step``: paged, and as JSON Lines."""
    base = api_path(f"runs/{quote(run_id, safe='')}")
    query = urlencode({"step": step})
    return f"{base}/findings?{query}", f"{base}/findings.jsonl?{query}"


def map_out(run_id: str, status: MapStatus) -> MapOut:
    """How the API shows one map step's status."""
    findings_url, jsonl_url = findings_links(run_id, status.step)
    return MapOut(
        step=status.step,
        items_total=status.items_total,
        items_done=status.items_done,
        items_failed=status.items_failed,
        batches=dict(status.batches),
        batches_total=status.batches_total,
        counts=dict(status.counts),
        examples={kind: list(found) for kind, found in status.examples.items()},
        failed_batches=[
            FailedBatchOut(
                number=batch.number,
                first_item=batch.first_item,
                items=batch.items,
                state=batch.state,
                error=batch.error,
                failed_items=[
                    FailedItemOut(item=item, error=error)
                    for item, error in batch.failed_items[:MAX_FAILED_ITEMS]
                ],
                failed_items_total=len(batch.failed_items),
            )
            for batch in status.failed_batches[:MAX_FAILED_BATCHES]
        ],
        failed_batches_total=len(status.failed_batches),
        partial=not status.complete,
        generation=status.generation,
        findings_url=findings_url,
        findings_jsonl_url=jsonl_url,
    )


def map_outs(service: Service, run_id: str) -> list[MapOut]:
    """Each started map step of the run, as the run's status shows it."""
    return [map_out(run_id, status) for status in maps.map_status(run_id, service=service)]


def defined_map_steps(service: Service, status: RunStatus) -> list[str]:
    """The names of the map steps the run's pipeline defines (none if it is no longer
    configured)."""
    if status.run.pipeline not in service.registry:
        return []
    pipeline = service.registry.get(status.run.pipeline)
    return [task.step_name for task in pipeline.steps if isinstance(task, MapTask)]


def checked_step(service: Service, status: RunStatus, step: str) -> str:
    """``step``, if it is a map step of the run (its pipeline defines it, or the store has
    started it); a 404 naming it, under ``query.step``, otherwise. The store's summary is read
    only when the definition does not say."""
    defined = defined_map_steps(service, status)
    if step in defined:
        return step
    started = [m.step for m in maps.map_status(status.id, service=service)]
    if step in started:
        return step
    names = started + [name for name in defined if name not in started]
    known = ", ".join(repr(name) for name in names) or "none"
    message = f"the run has no map step {step!r} (its map steps: {known})"
    raise ApiError(404, message, {"query.step": [message]})


def finding_out(record: FindingRecord) -> FindingOut:
    return FindingOut(
        item=record.item, batch=record.batch, kind=record.kind, finding=record.finding
    )


@router.get("/{run_id}/findings", response={200: FindingsOut, **_NOT_FOUND, 422: ErrorOut})
def list_findings(
    request: HttpRequest,
    run_id: str,
    step: QueryEx[str, P(min_length=1, description="The map step.")],
    kind: QueryEx[str | None, P(description="Only findings of this kind.")] = None,
    after: QueryEx[int, P(ge=0, le=_LARGEST_ID, description="Items numbered above this.")] = 0,
    limit: QueryEx[int, P(ge=1, description="About this many findings (capped at 5000).")] = 1000,
) -> FindingsOut:
    """A page of a map step's findings, in item order, for items numbered above ``after``
    (of ``kind`` only, if given). A page ends with an item's last finding; read on by passing
    ``next`` as ``after`` until ``next`` is null. An unknown step answers 404."""
    service = default_service()
    status = visible_run(caller_of(request), run_id, service)
    checked_step(service, status, step)
    page = maps.read_findings(
        status.id, step, after=after, limit=min(limit, MAX_FINDINGS), kind=kind, service=service
    )
    return FindingsOut(
        findings=[finding_out(record) for record in page],
        next=page[-1].item if page else None,
    )


@router.get(
    "/{run_id}/findings.jsonl",
    response={**_NOT_FOUND, 422: ErrorOut},
    openapi_extra=_JSONL_DOC,
)
def download_findings(
    request: HttpRequest,
    run_id: str,
    step: QueryEx[str, P(min_length=1, description="The map step.")],
    kind: QueryEx[str | None, P(description="Only findings of this kind.")] = None,
) -> StreamingHttpResponse:
    """Every finding of a map step (of ``kind`` only, if given) as JSON Lines, one
    ``{item, batch, kind, finding}`` a line in item order, streamed as it is read: never held
    whole in memory. While the step runs, the findings of the batches done so far."""
    service = default_service()
    status = visible_run(caller_of(request), run_id, service)
    checked_step(service, status, step)
    response = StreamingHttpResponse(
        _lines(service, status.id, step, kind), content_type="application/x-ndjson"
    )
    name = f"{status.id}-{step}{'-' + kind if kind else ''}-findings.jsonl"
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)
    disposition = f"attachment; filename=\"{safe}\"; filename*=UTF-8''{quote(name)}"
    response["Content-Disposition"] = disposition
    response["X-Content-Type-Options"] = "nosniff"
    return response


def _lines(service: Service, run_id: str, step: str, kind: str | None) -> Iterator[bytes]:
    after = 0
    encoder = NinjaJSONEncoder(ensure_ascii=False, separators=(",", ":"))
    while page := maps.read_findings(
        run_id, step, after=after, limit=STREAM_PAGE, kind=kind, service=service
    ):
        yield "".join(
            encoder.encode({"item": f.item, "batch": f.batch, "kind": f.kind, "finding": f.finding})
            + "\n"
            for f in page
        ).encode()
        after = page[-1].item


@router.post("/{run_id}/retry-batches", response={202: RetriedOut, **_NOT_FOUND, 409: ErrorOut})
def retry_batches(request: HttpRequest, run_id: str) -> Status[RetriedOut]:
    """Queue again the batches of an ended run's map steps that failed (or never ran, or
    listed failed items), and only those (202 with how many); the steps after them are
    recomputed when they end. A queued or running run, or one with nothing to retry, answers
    409."""
    retried, state = actions.retry_batches(caller_of(request), default_service(), run_id)
    return Status(202, RetriedOut(batches=retried, state=state))
