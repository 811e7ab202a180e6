"""Runs: status, log, results, cancelling and running again.

An unknown or malformed run id answers 404 everywhere (the store raises
:class:`~gristmill.errors.NotFoundError` for both).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from django.http import HttpRequest, HttpResponse
from ninja import P, QueryEx, Router, Status
from ninja.responses import NinjaJSONEncoder

from gristmill.app.service import Service, default_service
from gristmill.app.staleness import accept, check
from gristmill.app.submission import RunStatus
from gristmill.engine.planner import RunView
from gristmill.errors import ConflictError, InternalErrorRef, PermissionDeniedError
from gristmill.server import actions
from gristmill.server.access import Caller, visible_run
from gristmill.server.api.auth import caller_of
from gristmill.server.api.errors import internal_error
from gristmill.server.api.maps import map_outs
from gristmill.server.api.schemas import (
    AncestorOut,
    ErrorOut,
    InputDigestOut,
    LogLineOut,
    LogOut,
    PinOut,
    Progress,
    ResultsOut,
    RunError,
    RunOut,
    StateOut,
    StepOut,
    StepResultOut,
    run_links,
)
from gristmill.states import StepState

router = Router(tags=["runs"])

MAX_LOG_LINES = 5000
"""The most log lines one request returns; larger limits are capped to it."""
_LARGEST_ID = 2**63 - 1
_NOT_FOUND = {404: ErrorOut}


def _moment(seconds: float | None) -> datetime | None:
    return None if seconds is None else datetime.fromtimestamp(seconds, UTC)


@router.get("/{run_id}", response={200: RunOut, **_NOT_FOUND})
def get_run_status(request: HttpRequest, run_id: str) -> RunOut:
    """A run's state, current step, stage and progress, its steps, and its error if it failed.

    An internal error shows only its reference; staff find the traceback under it.
    """
    caller = caller_of(request)
    return run_out(caller, visible_run(caller, run_id, default_service()))


def run_out(caller: Caller, status: RunStatus) -> RunOut:
    """The run's status as the API answers it to ``caller`` (who may see it)."""
    run = status.run
    progress = None
    if run.progress_done is not None:
        progress = Progress(done=run.progress_done, total=run.progress_total)
    error = None
    if run.error_message is not None:
        traceback = run.error_traceback if caller.is_staff else None
        error = RunError(message=run.error_message, reference=run.error_ref, traceback=traceback)
    ancestor = None
    if run.ancestor_id is not None:
        links = run_links(run.ancestor_id)
        ancestor = AncestorOut(id=run.ancestor_id, url=links["url"], status_url=links["status_url"])
    return RunOut(
        id=run.id,
        pipeline=run.pipeline,
        ancestor=ancestor,
        state=run.state,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        expires_at=run.expires_at,
        current_step=run.current_step,
        stage=run.stage,
        progress=progress,
        error=error,
        attempt=run.attempt,
        cancel_requested=run.cancel_requested,
        cancel_requested_at=run.cancel_requested_at,
        cancel_requested_by=run.cancel_requested_by,
        interrupted_step=run.interrupted_step,
        pinned=run.pinned,
        version=status.version,
        params=run.params,
        inputs=[
            InputDigestOut(
                name=item.name,
                kind=str(item.kind),
                size=item.size,
                sha256=item.sha256,
                media_type=item.media_type,
            )
            for item in run.inputs
        ],
        steps=[
            StepOut(
                name=step.name,
                title=step.title,
                state=step.state,
                attempt=step.attempt,
                duration=step.duration,
                error=step.error,
                started_at=_moment(step.started_at),
                finished_at=_moment(step.finished_at),
            )
            for step in status.steps
        ],
        maps=map_outs(default_service(), run.id),
        **run_links(run.id),
    )


@router.get("/{run_id}/log", response={200: LogOut, **_NOT_FOUND, 422: ErrorOut})
def get_log(
    request: HttpRequest,
    run_id: str,
    after: QueryEx[int, P(ge=0, le=_LARGEST_ID, description="Read lines after this id.")] = 0,
    limit: QueryEx[int, P(ge=1, description="At most this many lines (capped at 5000).")] = 1000,
) -> LogOut:
    """Log lines with an id greater than ``after``, oldest first, at most ``limit`` of them
    (capped at 5000). Read on by passing the answer's ``next`` as ``after``."""
    service = default_service()
    store = service.store
    visible_run(caller_of(request), run_id, service)  # unknown or hidden: 404, not an empty log
    lines = store.read_log(run_id, after=after, limit=min(limit, MAX_LOG_LINES))
    return LogOut(
        lines=[
            LogLineOut(
                id=line.id,
                at=datetime.fromtimestamp(line.at, UTC),
                step=line.step,
                stream=line.stream,
                text=line.text,
            )
            for line in lines
        ],
        next=lines[-1].id if lines else after,
    )


@router.get("/{run_id}/results", response={200: ResultsOut, **_NOT_FOUND})
def get_results(request: HttpRequest, run_id: str) -> ResultsOut:
    """What each step shows: its ``context``, built from its stored result, for the steps that
    succeeded (null for the others), and whether that result is ``stale``, with the reasons.
    A run that has not succeeded yet shows what exists.

    Nothing is queued here, even for stale results: ``POST /runs/{id}/rerun`` recomputes them
    (the run's page queues them itself)."""
    service = default_service()
    caller = caller_of(request)
    status = visible_run(caller, run_id, service)
    contexts = step_contexts(service, status, staff=caller.is_staff)
    reasons = check(service, status.id).reasons
    return ResultsOut(
        state=status.state,
        steps=[
            StepResultOut(
                name=step.name,
                title=step.title,
                state=step.state,
                context=shown(contexts.get(step.name)),
                stale=step.name in reasons,
                stale_reasons=list(reasons.get(step.name, ())),
            )
            for step in status.steps
        ],
    )


def step_contexts(service: Service, status: RunStatus, *, staff: bool = False) -> dict[str, Any]:
    """The ``context()`` of each succeeded step, by step name; without ``staff``, the keys a
    task names in ``staff_only`` are left out of a dict context.

    A context that cannot be built (the task raised, or returned something that is not JSON)
    is logged with a reference and is that :class:`~gristmill.errors.InternalErrorRef` instead,
    shown (:func:`shown`) as ``{"error": "internal error, reference ..."}``.
    """
    succeeded = [step for step in status.steps if step.state == StepState.SUCCEEDED]
    if not succeeded or status.run.pipeline not in service.registry:
        return {}
    pipeline = service.registry.get(status.run.pipeline)
    results = {step.name: step.result for step in status.steps}
    contexts: dict[str, Any] = {}
    try:
        view = RunView(pipeline, status.run, service.storage, service.store)
    except Exception as error:
        failed = internal_error(error, f"the results view of run {status.id}")
        return {step.name: failed for step in succeeded}
    for step in succeeded:
        try:
            task = pipeline.step(step.name)
            context = task.context(view.context(task, results), step.result)
            if not staff and task.staff_only and isinstance(context, dict):
                hidden = set(task.staff_only)
                context = {key: value for key, value in context.items() if key not in hidden}
            json.dumps(context, cls=NinjaJSONEncoder, allow_nan=False)
        except Exception as error:
            where = f"context() of step {step.name} of run {status.id}"
            contexts[step.name] = internal_error(error, where)
        else:
            contexts[step.name] = context
    return contexts


def shown(context: Any) -> Any:
    """A context from :func:`step_contexts` as the answer shows it."""
    return context.shown() if isinstance(context, InternalErrorRef) else context


@router.post("/{run_id}/cancel", response={202: StateOut, **_NOT_FOUND, 409: ErrorOut})
def cancel_run(request: HttpRequest, run_id: str) -> Status[StateOut]:
    """Cancel a run: at once if it is queued, as soon as its step stops if it is running
    (202 with the state). After a 202 the run ends `cancelled`, whatever it was doing. A run
    that had already ended answers 409, naming its final state."""
    state = actions.cancel(caller_of(request), default_service(), run_id)
    return Status(202, StateOut(state=state))


@router.delete("/{run_id}", response={204: None, **_NOT_FOUND, 409: ErrorOut})
def delete_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """Delete an ended run's inputs, outputs, results and log now (204). A small record stays,
    so that the run's URL says it was deleted. A queued or running run answers 409: cancel
    it first."""
    actions.delete(caller_of(request), default_service(), run_id)
    return HttpResponse(status=204)


@router.post(
    "/{run_id}/steps/{step}/accept",
    response={200: StepResultOut, 403: ErrorOut, **_NOT_FOUND, 409: ErrorOut},
)
def accept_result(request: HttpRequest, run_id: str, step: str) -> StepResultOut:
    """Staff only: take a step's stale result as current, so that it is not recomputed (the
    steps that read it keep their own staleness). 409 if the result is not stale."""
    caller = caller_of(request)
    service = default_service()
    visible_run(caller, run_id, service)
    if not caller.is_staff:
        raise PermissionDeniedError("only staff can accept a stale result as current")
    if not accept(service, run_id, step):
        raise ConflictError(f"the result of step {step!r} is not stale; there is nothing to accept")
    status = visible_run(caller, run_id, service)  # as it is now
    (accepted,) = (s for s in status.steps if s.name == step)
    contexts = step_contexts(service, status, staff=True)
    return StepResultOut(
        name=step,
        title=accepted.title,
        state=accepted.state,
        context=shown(contexts.get(step)),
        stale=False,
        stale_reasons=[],
    )


_PIN_ANSWERS = {200: PinOut, 401: ErrorOut, 403: ErrorOut, **_NOT_FOUND, 409: ErrorOut}


@router.put("/{run_id}/pin", response=_PIN_ANSWERS)
def pin_run(request: HttpRequest, run_id: str) -> PinOut:
    """Keep the run past its expiry until it is unpinned (its owner or staff; a run submitted
    anonymously, staff only). An expired run answers 409."""
    return _set_pinned(request, run_id, pinned=True)


@router.delete("/{run_id}/pin", response=_PIN_ANSWERS)
def unpin_run(request: HttpRequest, run_id: str) -> PinOut:
    """Let the run expire again: at the next prune if its expiry has passed."""
    return _set_pinned(request, run_id, pinned=False)


def _set_pinned(request: HttpRequest, run_id: str, *, pinned: bool) -> PinOut:
    actions.pin(caller_of(request), default_service(), run_id, pinned=pinned)
    return PinOut(pinned=pinned)


@router.post("/{run_id}/rerun", response={202: StateOut, **_NOT_FOUND, 409: ErrorOut})
def rerun_run(request: HttpRequest, run_id: str) -> Status[StateOut]:
    """Queue an ended run again (202): stale steps are recomputed, current results are kept.
    A run that is still queued or running, or has expired, answers 409."""
    state = actions.rerun(caller_of(request), default_service(), run_id)
    return Status(202, StateOut(state=state))
