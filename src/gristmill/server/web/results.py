"""What the run page shows of a succeeded run: each step's context, rendered, and marked
stale with the reasons when the stored result is out of date (the old results stay on the page
while a recomputation runs).

The contexts are built by the REST API's :func:`~gristmill.server.api.runs.step_contexts`, so
the page and ``GET /runs/{id}/results`` always agree. A step whose task names a ``template`` is
rendered with it; any other context gets the default rendering (:func:`render_value`), which
stays readable for big results. The results part as a whole is ``gristmill/results.html``, or
the pipeline's ``page_template`` extending it (:func:`results_page`). Templates are found in the
pipeline's own folders first (:attr:`Pipeline.template_dirs
<gristmill.authoring.pipelines.Pipeline.template_dirs>`), then gristmill's and the Django
project's.
"""

from __future__ import annotations

import contextlib
import functools
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from django.http import HttpRequest
from django.urls import reverse
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

SHOWN_ITEMS = 10
"""Entries of a list (or dict) shown at once; the next ones wait behind "… and N more"."""
SHOWN_ROWS = 20
"""Rows of a table shown at once."""
SHOWN_GROUPS = 10
"""Groups (of errors, say) shown at once."""
SHOWN_EXAMPLES = 3
"""Examples shown in each group."""
MAX_ITEMS = 200
"""The most entries of one list or dict on the page, opened or not; the rest are counted."""
SHOWN_TEXT = 300
"""Characters of a text shown at once; the next ones wait behind "… and N more characters"."""
MAX_TEXT = 2000
"""The most characters of one text on the page, opened or not; the rest are counted."""
MAX_DEPTH = 4
"""Values nested deeper are shown as (shortened) JSON text."""
DEFAULT_PAGE = "gristmill/results.html"
"""The results part of the run page, which a pipeline's ``page_template`` extends."""


@dataclass
class StepResult:
    """One succeeded step on the results page."""

    step: StepStatus
    """The step (``name``, ``title``, ``state``, ``attempt``, ``duration``); its raw result
    is not there, only :attr:`context`."""
    html: SafeString
    """The context rendered by the step's ``template``, or by the default rendering."""
    stale_reasons: tuple[str, ...] = ()
    """Why the result shown is out of date; empty when it is current."""
    context: Any = None
    """What the step's ``context()`` made of its result (staff-only keys removed for others)."""

    @property
    def name(self) -> str:
        return self.step.name

    @property
    def title(self) -> str:
        return self.step.title

    @property
    def stale(self) -> bool:
        return bool(self.stale_reasons)


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
    shown = without_results(stored)
    results = []
    for step in stored.steps:
        if step.state != StepState.SUCCEEDED or step.name not in contexts:
            continue
        context = contexts[step.name]
        template = pipeline.step(step.name).template if pipeline is not None else None
        if isinstance(context, InternalErrorRef):  # no template can use it
            html = render_value(context.shown())
        elif template:
            html = _render_template(pipeline, template, context, shown, step, request)
        else:
            html = render_value(context)
        reasons = staleness.reasons.get(step.name, ()) if staleness else ()
        results.append(StepResult(_shown_step(step), html, reasons, context))
    return results


def without_results(status: RunStatus) -> RunStatus:
    """``status`` as templates get it: the steps' raw results left out (templates show
    contexts, from which staff-only keys are removed for others)."""
    return RunStatus(status.run, [_shown_step(step) for step in status.steps])


def _shown_step(step: StepStatus) -> StepStatus:
    return replace(step, result=None)


def pipeline_template(pipeline: Pipeline | None, name: str) -> _Template:
    """The template ``name``, looked for in the pipeline's folders (``templates=`` and the
    ``templates`` folder beside its module), then gristmill's own and the Django project's;
    ``TemplateDoesNotExist`` if none has it."""
    from django.template import TemplateDoesNotExist
    from django.template.loader import get_template

    dirs = tuple(str(d) for d in pipeline.template_dirs) if pipeline is not None else ()
    if dirs:
        with contextlib.suppress(TemplateDoesNotExist):
            found: _Template = _backend(dirs).get_template(name)
            return found
    return get_template(name)


class _Template(Protocol):
    def render(self, context: dict[str, Any], request: HttpRequest) -> str: ...


@functools.cache
def _backend(dirs: tuple[str, ...]) -> Any:
    from django.conf import settings
    from django.template.backends.django import DjangoTemplates

    options = dict(settings.TEMPLATES[0].get("OPTIONS", {})) if settings.TEMPLATES else {}
    options.pop("loaders", None)
    return DjangoTemplates(
        {"NAME": "gristmill-pipeline", "DIRS": list(dirs), "APP_DIRS": True, "OPTIONS": options}
    )


def results_page(
    pipeline: Pipeline | None, values: dict[str, Any], request: HttpRequest
) -> SafeString:
    """The results part of the run page: the pipeline's ``page_template`` (which extends
    ``gristmill/results.html``) or that default, given ``values`` (see docs/pipelines.md,
    "Results pages"). A page template that fails is logged under a reference, and the default
    is shown with a note that says so."""
    name = pipeline.page_template if pipeline is not None else None
    if pipeline is not None and name:
        try:
            return mark_safe(pipeline_template(pipeline, name).render(values, request))
        except Exception as error:
            failed = internal_error(error, f"page template {name} of pipeline {pipeline.name}")
            values = {**values, "page_error": failed.message}
    return mark_safe(pipeline_template(pipeline, DEFAULT_PAGE).render(values, request))


def _as_stored(status: RunStatus, succeeded: frozenset[str]) -> RunStatus:
    # The step a worker is recomputing shows as running, but its old result is still stored.
    steps = [
        replace(step, state=StepState.SUCCEEDED) if step.name in succeeded else step
        for step in status.steps
    ]
    return RunStatus(status.run, steps)


def _render_template(
    pipeline: Pipeline | None,
    template: str,
    context: Any,
    status: RunStatus,
    step: StepStatus,
    request: HttpRequest,
) -> SafeString:
    values = {"context": context, "run": status, "step": _shown_step(step)}
    try:
        return mark_safe(pipeline_template(pipeline, template).render(values, request))
    except Exception as error:
        failed = internal_error(error, f"template {template} of step {step.name}")
        return render_value(failed.shown())


def render_value(value: Any, depth: int = 0) -> SafeString:
    """``value`` (JSON data) as HTML, by the default rendering: a dict as a table of keys and
    values (nested dicts as definition lists), a list of alike dicts as a table with a header
    row, a list of groups (dicts with ``count`` and ``examples``) as groups with their count
    and a few examples, a list of plain values as a list, anything else as text. Long lists,
    tables and texts show their first entries and count the rest; deep values are JSON."""
    if depth > MAX_DEPTH:
        return _text(json.dumps(value, ensure_ascii=False), "code")
    if isinstance(value, dict):
        return _mapping(value, depth) if depth == 0 else _definitions(value, depth)
    if isinstance(value, list):
        if not value:
            return mark_safe('<span class="empty">(none)</span>')
        if _groups(value):
            return _render_groups(value, depth)
        if _alike_rows(value):
            return _rows(value, depth)
        flat = all(not isinstance(item, dict | list) for item in value)
        opening = mark_safe("<ul>" if flat else '<ul class="nested">')

        def items(part: list[Any]) -> SafeString:
            entries = format_html_join(
                "", "<li>{}</li>", ((render_value(v, depth + 1),) for v in part)
            )
            return format_html("{}{}</ul>", opening, entries)

        return _collapsed(value, SHOWN_ITEMS, items, "more")
    return _scalar(value)


def _collapsed(
    value: list[Any], shown: int, render: Callable[[list[Any]], SafeString], noun: str
) -> SafeString:
    """The first ``shown`` entries of ``value``, then the next ones (up to ``MAX_ITEMS``)
    behind a disclosure that says how many there are, then a count of the rest."""
    head = render(value[:shown])
    if len(value) <= shown:
        return head
    rest = value[shown:MAX_ITEMS]
    left = len(value) - shown - len(rest)
    hidden = (
        format_html(
            '<p class="more">… {} more not shown here (the API has them all).</p>', f"{left:,}"
        )
        if left
        else mark_safe("")
    )
    return format_html(
        '{}<details class="more-items"><summary class="more">… and {} {}</summary>{}{}</details>',
        head,
        f"{len(value) - shown:,}",
        noun,
        render(rest) if rest else mark_safe(""),
        hidden,
    )


def _mapping(value: dict[str, Any], depth: int) -> SafeString:
    if not value:
        return mark_safe('<span class="empty">(none)</span>')

    def rows(entries: list[tuple[str, Any]]) -> SafeString:
        body = format_html_join(
            "",
            '<tr><th scope="row">{}</th><td>{}</td></tr>',
            ((key, render_value(item, depth + 1)) for key, item in entries),
        )
        return format_html('<table class="kv"><tbody>{}</tbody></table>', body)

    return _collapsed(list(value.items()), MAX_ITEMS, rows, "more")


def _definitions(value: dict[str, Any], depth: int) -> SafeString:
    if not value:
        return mark_safe('<span class="empty">(none)</span>')

    def entries(part: list[tuple[str, Any]]) -> SafeString:
        body = format_html_join(
            "",
            "<dt>{}</dt><dd>{}</dd>",
            ((key, render_value(item, depth + 1)) for key, item in part),
        )
        return format_html('<dl class="nested">{}</dl>', body)

    return _collapsed(list(value.items()), SHOWN_ROWS, entries, "more")


def _groups(value: list[Any]) -> bool:
    return all(
        isinstance(item, dict)
        and isinstance(item.get("count"), int)
        and isinstance(item.get("examples"), list)
        for item in value
    )


def _render_groups(value: list[dict[str, Any]], depth: int) -> SafeString:
    def groups(part: list[dict[str, Any]]) -> SafeString:
        return format_html_join("", "{}", ((_group(group, depth),) for group in part))

    return format_html(
        '<div class="groups">{}</div>', _collapsed(value, SHOWN_GROUPS, groups, "more groups")
    )


def _group(group: dict[str, Any], depth: int) -> SafeString:
    described = {k: v for k, v in group.items() if k not in ("count", "examples")}
    label = format_html_join(
        " ",
        '<span class="group-field"><span class="group-key">{}</span> {}</span>',
        (
            (key, render_value(item, MAX_DEPTH))
            for key, item in described.items()
            if not isinstance(item, dict | list)
        ),
    )
    details = {k: v for k, v in described.items() if isinstance(v, dict | list)}
    examples: list[Any] = group["examples"]
    count: int = group["count"]
    shown = examples[:SHOWN_EXAMPLES]
    rest = count - len(shown)
    return format_html(
        '<section class="group"><p class="group-head"><span class="count">{}</span> {}</p>'
        '{}<div class="examples">{}</div>{}</section>',
        f"{count:,}",
        label,
        render_value(details, depth + 1) if details else mark_safe(""),
        render_value(shown, depth + 1) if shown else mark_safe(""),
        format_html('<p class="more">… and {} more like these</p>', f"{rest:,}")
        if rest > 0
        else mark_safe(""),
    )


def _alike_rows(value: list[Any]) -> bool:
    if not isinstance(value[0], dict) or not value[0]:
        return False
    keys = value[0].keys()
    return all(isinstance(item, dict) and item.keys() == keys for item in value)


def _rows(value: list[dict[str, Any]], depth: int) -> SafeString:
    columns = list(value[0])
    header = format_html_join("", '<th scope="col">{}</th>', ((column,) for column in columns))

    def table(part: list[dict[str, Any]]) -> SafeString:
        body = format_html_join(
            "",
            "<tr>{}</tr>",
            ((_cells((row[column] for column in columns), depth),) for row in part),
        )
        return format_html(
            '<table class="rows"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            header,
            body,
        )

    return _collapsed(value, SHOWN_ROWS, table, "more rows")


def _cells(values: Iterable[Any], depth: int) -> SafeString:
    return format_html_join("", "<td>{}</td>", ((render_value(v, depth + 1),) for v in values))


def _scalar(value: Any) -> SafeString:
    if value is None:
        return mark_safe('<span class="null">none</span>')
    if isinstance(value, bool):
        return mark_safe("yes" if value else "no")
    return _text(str(value))


def _text(text: str, tag: str = "") -> SafeString:
    def shown(part: str) -> SafeString:
        if tag:
            return format_html("<{}>{}</{}>", mark_safe(tag), part, mark_safe(tag))
        return format_html("{}", part)

    if len(text) <= SHOWN_TEXT:
        return shown(text)
    left = len(text) - MAX_TEXT
    return format_html(
        '{}<details class="more-text"><summary class="more">… and {} more characters</summary>'
        "{}{}</details>",
        shown(text[:SHOWN_TEXT]),
        f"{len(text) - SHOWN_TEXT:,}",
        shown(text[SHOWN_TEXT:MAX_TEXT]),
        format_html('<span class="more"> … {} more not shown here.</span>', f"{left:,}")
        if left > 0
        else mark_safe(""),
    )


def results_context(
    page: dict[str, Any], results: list[StepResult], request: HttpRequest
) -> dict[str, Any]:
    """What the results part of the run page (``gristmill/results.html`` or a pipeline's
    ``page_template``) is given, from the run page's own context ``page``; documented in
    docs/pipelines.md, "Results pages"."""
    status: RunStatus = page["status"]
    staleness: Staleness = page["staleness"]
    ancestor = status.run.ancestor_id
    return {
        "run": without_results(status),
        "pipeline": page.get("pipeline"),
        "params": status.run.params,
        "results": results,
        "steps": {result.name: result for result in results},
        "outputs": page.get("outputs", []),
        "staleness": staleness,
        "stale": any(result.stale for result in results),
        "recomputing": staleness.recomputing,
        "ancestor": ancestor,
        "ancestor_url": reverse("gristmill-web:run", args=[ancestor]) if ancestor else None,
        "is_staff": session_caller(request).is_staff,
    }
