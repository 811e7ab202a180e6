"""Filtered runs from the run page: the "New run from these items" form (the items of one of
the run's map steps that have a finding of a kind, or where a JSON path has a value, processed
by the same or another pipeline), and the line that links a filtered run back to its source.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.views.decorators.http import require_POST

from gristmill.app.service import Service, default_service
from gristmill.app.submission import RunStatus, submit
from gristmill.authoring.filters import ItemFilter
from gristmill.authoring.inputs import InputKind, RunItems
from gristmill.authoring.maps import MapTask
from gristmill.authoring.pipelines import Pipeline
from gristmill.errors import SubmissionError
from gristmill.server.access import Caller, may_use, session_caller, visible_run
from gristmill.states import RunState


@dataclass
class FilterForm:
    """What the form offers: the run's map steps with their finding kinds, and the pipelines
    that take items."""

    steps: list[dict[str, Any]] = field(default_factory=list)
    pipelines: list[Pipeline] = field(default_factory=list)


def filter_form(
    service: Service, caller: Caller, status: RunStatus, pipeline: Pipeline | None
) -> FilterForm | None:
    """The form for an ended run with checked map steps, or None if it has none."""
    run = status.run
    if pipeline is None or not run.state.is_terminal or run.state == RunState.EXPIRED:
        return None
    if not any(isinstance(task, MapTask) for task in pipeline.steps):
        return None  # asks the database nothing for the pipelines without map steps
    maps = {m.step: m for m in service.store.map_status(run.id) if m.complete}
    steps = [
        {"name": task.step_name, "kinds": sorted(maps[task.step_name].counts)}
        for task in pipeline.steps
        if isinstance(task, MapTask) and task.pair_with_ancestor is None and task.step_name in maps
    ]
    targets = [
        p for p in service.registry if InputKind.ITEMS in p.inputs.kinds and may_use(caller, p)
    ]
    if not steps or not targets:
        return None
    return FilterForm(steps, targets)


def filtered_from(status: RunStatus) -> ItemFilter | None:
    """Where a filtered run's items came from, or None for another run."""
    for record in status.run.inputs:
        if record.kind == InputKind.ITEMS and record.source:
            return ItemFilter.from_source(record.source)
    return None


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


@require_POST
def new_filtered_run(request: HttpRequest, run_id: str) -> HttpResponse:
    """Start a filtered run from the run page's form; its page (303), or the run page again
    saying why it was refused."""
    from gristmill.server.web.views import HttpResponseSeeOther, pages

    @pages
    def answer(request: HttpRequest, run_id: str) -> HttpResponse:
        caller, service = session_caller(request), default_service()
        status = visible_run(caller, run_id, service)
        form = request.POST
        step = form.get("step") or None
        target = form.get("pipeline") or status.run.pipeline
        if form.get("by") == "where":
            given = RunItems(
                status.id, step, where=form.get("where", ""), value=_value(form.get("value", ""))
            )
        else:
            given = RunItems(status.id, step, finding=form.get("finding", ""))
        back = reverse("gristmill-web:run", args=[status.id])
        if target not in service.registry or not may_use(caller, service.registry.get(target)):
            messages.error(request, f"No pipeline {target!r} to run the items with.")
            return HttpResponseSeeOther(back)
        try:
            new = submit(target, [given], owner_id=caller.user_id, service=service)
        except SubmissionError as refusal:
            said = "; ".join(m for ms in refusal.errors.values() for m in ms)
            messages.error(request, f"The new run was refused: {said}.")
            return HttpResponseSeeOther(back)
        return HttpResponseSeeOther(reverse("gristmill-web:run", args=[new]))

    return answer(request, run_id)
