"""What the run page shows of a succeeded run: each step's context, rendered, and marked
stale with the reasons when the stored result is out of date (the old results stay on the page
while a recomputation runs).

The contexts are built by the REST API's :func:`~gristmill.server.api.runs.step_contexts`, so
the page and ``GET /runs/{id}/results`` always agree. A step whose task names a ``template`` is
rendered with it; any other context gets the default rendering (:func:`render_value`): a dict
is a table of keys and values, a list of alike dicts a table with a header row, a list of
plain values a list, anything else text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from django.http import HttpRequest
from django.template.loader import render_to_string
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from gristmill.app.service import Service
from gristmill.app.staleness import Staleness
from gristmill.app.submission import RunStatus, StepStatus
from gristmill.authoring.pipelines import Pipeline
from gristmill.errors import InternalErrorRef
from gristmill.server.access import session_caller
from gristmill.server.api.errors import internal_error
from gristmill.server.api.runs import step_contexts
from gristmill.states import StepState

MAX_ITEMS = 1000
"""The most entries of one dict or list shown; the rest are counted, not shown."""
MAX_DEPTH = 8
"""Deeper values are shown as JSON text."""


@dataclass
class StepResult:
    """One succeeded step on the results page."""

    step: StepStatus
    html: SafeString
    stale_reasons: tuple[str, ...] = ()
    """Why the result shown is out of date; empty when it is current."""


def step_results(
    service: Service,
    status: RunStatus,
    pipeline: Pipeline | None,
    request: HttpRequest,
    staleness: Staleness | None = None,
) -> list[StepResult]:
    """The rendered context of each succeeded step of the run, in step order, with the
    reasons of those that are stale. While a recomputation runs, the step being recomputed
    still shows its old result."""
    stored = _as_stored(status, staleness.stale_results) if staleness else status
    contexts = step_contexts(service, stored, staff=session_caller(request).is_staff)
    results = []
    for step in stored.steps:
        if step.state != StepState.SUCCEEDED or step.name not in contexts:
            continue
        context = contexts[step.name]
        template = pipeline.step(step.name).template if pipeline is not None else None
        if isinstance(context, InternalErrorRef):  # no template can use it
            html = render_value(context.shown())
        elif template:
            html = _render_template(template, context, stored, step, request)
        else:
            html = render_value(context)
        reasons = staleness.reasons.get(step.name, ()) if staleness else ()
        results.append(StepResult(step, html, reasons))
    return results


def _as_stored(status: RunStatus, succeeded: frozenset[str]) -> RunStatus:
    # The step a worker is recomputing shows as running, but its old result is still stored.
    steps = [
        replace(step, state=StepState.SUCCEEDED) if step.name in succeeded else step
        for step in status.steps
    ]
    return RunStatus(status.run, steps)


def _render_template(
    template: str, context: Any, status: RunStatus, step: StepStatus, request: HttpRequest
) -> SafeString:
    values = {"context": context, "run": status, "step": step}
    try:
        return mark_safe(render_to_string(template, values, request=request))
    except Exception as error:
        failed = internal_error(error, f"template {template} of step {step.name}")
        return render_value(failed.shown())


def render_value(value: Any, depth: int = 0) -> SafeString:
    """``value`` (JSON data) as HTML, by the default rendering."""
    if depth > MAX_DEPTH:
        return format_html("<code>{}</code>", json.dumps(value, ensure_ascii=False))
    if isinstance(value, dict):
        return _mapping(value, depth)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="empty">(none)</span>')
        if _alike_rows(value):
            return _rows(value, depth)
        if all(not isinstance(item, dict | list) for item in value):
            items = format_html_join("", "<li>{}</li>", ((_scalar(v),) for v in value[:MAX_ITEMS]))
            return format_html("<ul>{}</ul>{}", items, _more(len(value)))
        items = format_html_join(
            "", "<li>{}</li>", ((render_value(v, depth + 1),) for v in value[:MAX_ITEMS])
        )
        return format_html('<ul class="nested">{}</ul>{}', items, _more(len(value)))
    return _scalar(value)


def _mapping(value: dict[str, Any], depth: int) -> SafeString:
    if not value:
        return mark_safe('<span class="empty">(none)</span>')
    entries = list(value.items())[:MAX_ITEMS]
    rows = format_html_join(
        "",
        '<tr><th scope="row">{}</th><td>{}</td></tr>',
        ((key, render_value(item, depth + 1)) for key, item in entries),
    )
    return format_html('<table class="kv"><tbody>{}</tbody></table>{}', rows, _more(len(value)))


def _alike_rows(value: list[Any]) -> bool:
    if not isinstance(value[0], dict) or not value[0]:
        return False
    keys = value[0].keys()
    return all(isinstance(item, dict) and item.keys() == keys for item in value)


def _rows(value: list[dict[str, Any]], depth: int) -> SafeString:
    columns = list(value[0])
    header = format_html_join("", '<th scope="col">{}</th>', ((column,) for column in columns))
    body = format_html_join(
        "",
        "<tr>{}</tr>",
        ((_cells((row[column] for column in columns), depth),) for row in value[:MAX_ITEMS]),
    )
    return format_html(
        '<table class="rows"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>{}',
        header,
        body,
        _more(len(value)),
    )


def _cells(values: Iterable[Any], depth: int) -> SafeString:
    return format_html_join("", "<td>{}</td>", ((render_value(v, depth + 1),) for v in values))


def _scalar(value: Any) -> SafeString:
    if value is None:
        return mark_safe('<span class="null">none</span>')
    if isinstance(value, bool):
        return mark_safe("yes" if value else "no")
    return format_html("{}", value)


def _more(count: int) -> SafeString:
    if count <= MAX_ITEMS:
        return mark_safe("")
    return format_html('<p class="more">… and {} more not shown.</p>', count - MAX_ITEMS)
