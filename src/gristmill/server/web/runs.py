"""A run as its page shows it: steps, stage and progress, log tail, output files, which
results are stale, and a panel per map step (:class:`MapPanel`), with a page of its findings on
demand (:class:`FindingsTable`).

``static/gristmill/run.js`` updates the same things from the REST API while the run is queued
or running; the texts made here (:func:`duration_text`, :func:`stage_text`, :func:`items_text`,
:func:`batches_text`, :func:`partial_text`, :func:`number_text`) and there must read alike.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote, urlencode

from gristmill.app import maps
from gristmill.app.service import Service
from gristmill.app.staleness import Staleness, check, refresh
from gristmill.app.submission import RunStatus, get_run
from gristmill.authoring.pipelines import Pipeline
from gristmill.server.api.maps import findings_links
from gristmill.server.api.schemas import run_links
from gristmill.server.links import api_path
from gristmill.server.web.charts import timeline
from gristmill.states import RunState
from gristmill.store.records import (
    CANCELLED_MESSAGE,
    KILLED_MESSAGE,
    NEVER_STARTED_MESSAGE,
    FindingRecord,
    LogLine,
    MapStatus,
)

LOG_LINES = 1000
"""The most log lines the page shows when it is made; the script reads on from there."""
EXAMPLES_SHOWN = 3
"""Examples of each kind of finding a map step's panel shows (``run.js`` shows as many)."""
KINDS_SHOWN = 12
"""Kinds of finding a panel lists before the rest are collapsed (``run.js`` alike)."""
FAILED_SHOWN = 5
"""Failed batches a panel lists before the rest are collapsed."""
FINDINGS_PAGE = 50
"""Findings in one page of the run page's findings table."""


@dataclass
class StepRow:
    """One step in the run page's list of steps."""

    name: str
    title: str
    state: str
    attempt: str
    duration: str
    stale_attempt: str | None = None
    """Set when the step's stored result is stale: the attempt that made it (``run.js`` drops
    the mark once the step has a newer attempt, that is once it has been recomputed)."""


@dataclass
class OutputLink:
    """One output file, to download."""

    step: str
    name: str
    size: int
    url: str


def number_text(n: int) -> str:
    """A count, readably: ``20,000`` (``run.js`` formats alike)."""
    return f"{n:,}"


def example_text(finding: Any, limit: int = 200) -> str:
    """A finding as one short line of JSON (as ``JSON.stringify`` writes it in ``run.js``)."""
    text = json.dumps(finding, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class KindRow:
    kind: str
    count: str
    examples: list[str]


@dataclass
class FailedBatchRow:
    number: int
    items: str
    """Which items it holds: ``items 7,501 to 8,000``."""
    error: str
    failed_items: list[str]
    more_items: int


@dataclass
class MapPanel:
    """What the run page shows of one map step: its progress in items and batches, its
    findings by kind with a few examples (marked partial while batches remain), its failed
    batches, and where to read or download its findings. Never a row per item."""

    step: str
    title: str
    partial: bool
    partial_text: str
    items_done: int
    items_total: int
    items_text: str
    batches_text: str
    kinds: list[KindRow]
    more_kinds: list[KindRow]
    failed: list[FailedBatchRow]
    more_failed: list[FailedBatchRow]
    failed_total: int
    jsonl_url: str


def items_text(done: int, total: int, failed: int) -> str:
    text = f"{number_text(done)} of {number_text(total)} items"
    return f"{text}, {number_text(failed)} failed" if failed else text


def batches_text(batches: dict[str, int], total: int) -> str:
    parts = [f"{number_text(batches.get(state, 0))} {state}" for state in ("done", "pending")]
    parts += [
        f"{number_text(batches[state])} {state}"
        for state in ("failed", "skipped")
        if batches.get(state)
    ]
    return f"Batches: {', '.join(parts)} (of {number_text(total)})"


def partial_text(status: MapStatus) -> str:
    ended = status.batches_total - status.remaining
    return f"partial — {number_text(ended)} of {number_text(status.batches_total)} batches"


def map_panel(run_id: str, status: MapStatus, title: str) -> MapPanel:
    kinds = [
        KindRow(
            kind,
            number_text(count),
            [example_text(f) for f in status.examples.get(kind, [])[:EXAMPLES_SHOWN]],
        )
        for kind, count in sorted(status.counts.items(), key=lambda pair: (-pair[1], pair[0]))
    ]
    failed = [
        FailedBatchRow(
            number=batch.number,
            items=f"items {number_text(batch.first_item)} to "
            f"{number_text(batch.first_item + batch.items - 1)}",
            error=batch.error or "",
            failed_items=[f"item {number_text(n)}: {error}" for n, error in batch.failed_items[:5]],
            more_items=max(0, len(batch.failed_items) - 5),
        )
        for batch in status.failed_batches[:100]
    ]
    return MapPanel(
        step=status.step,
        title=title,
        partial=not status.complete,
        partial_text=partial_text(status),
        items_done=status.items_done,
        items_total=status.items_total,
        items_text=items_text(status.items_done, status.items_total, status.items_failed),
        batches_text=batches_text(status.batches, status.batches_total),
        kinds=kinds[:KINDS_SHOWN],
        more_kinds=kinds[KINDS_SHOWN:],
        failed=failed[:FAILED_SHOWN],
        more_failed=failed[FAILED_SHOWN:],
        failed_total=len(status.failed_batches),
        jsonl_url=findings_links(run_id, status.step)[1],
    )


def map_panels(service: Service, status: RunStatus) -> list[MapPanel]:
    """The panels of the run's started map steps, in step order."""
    titles = {step.name: step.title for step in status.steps}
    return [
        map_panel(status.id, m, titles.get(m.step, m.step))
        for m in maps.map_status(status.id, service=service)
    ]


@dataclass
class FindingsTable:
    """One page of a map step's findings, shown on the run page on demand
    (``?findings=STEP&kind=KIND&after=N``)."""

    step: str
    title: str
    kind: str
    rows: list[tuple[str, str, str]]
    """(item, kind, the finding as JSON) for each finding."""
    next_url: str | None
    error: str = ""


def findings_table(
    service: Service, status: RunStatus, panels: list[MapPanel], query: Mapping[str, str]
) -> FindingsTable:
    """The page of findings ``query`` asks for; ``error`` says what is wrong with it."""
    step, kind = query.get("findings", ""), query.get("kind", "")
    panel = next((p for p in panels if p.step == step), None)
    table = FindingsTable(step, panel.title if panel else step, kind, [], None)
    if panel is None:
        table.error = f"This run has no started map step “{step}”."
        return table
    try:
        after = int(query.get("after", "0") or "0")
        if not 0 <= after < 2**63:
            raise ValueError(after)
    except ValueError:
        table.error = "The page asked for is not a page of findings (after must be an item number)."
        return table
    page: list[FindingRecord] = maps.read_findings(
        status.id, step, after=after, limit=FINDINGS_PAGE, kind=kind or None, service=service
    )
    table.rows = [(number_text(f.item), f.kind, example_text(f.finding, 500)) for f in page]
    if page:
        query_next = {"findings": step, **({"kind": kind} if kind else {}), "after": page[-1].item}
        table.next_url = f"?{urlencode(query_next)}#findings"
    return table


def duration_text(seconds: float | None) -> str:
    """How long a step took, for people: ``12 ms``, ``4.2 s``, ``3 min 05 s``, ``2 h 01 min``."""
    if seconds is None:
        return ""
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole % 3600 // 60:02d} min"


def stage_text(status: RunStatus, titles: dict[str, str]) -> str:
    """What the run is doing now, in a few words."""
    run = status.run
    if run.state == RunState.QUEUED:
        return "Waiting for a worker."
    if run.cancel_requested:
        return "Cancelling: waiting for the current step to stop."
    if run.current_step is None:
        return "Starting."
    text = f"Running {titles.get(run.current_step, run.current_step)}"
    return f"{text}: {run.stage}" if run.stage else text


def output_links(status: RunStatus) -> list[OutputLink]:
    """The run's output files with their download URLs (as the REST API lists them)."""
    base = api_path(f"runs/{status.id}/outputs")
    titles = {step.name: step.title for step in status.steps}
    return [
        OutputLink(
            step=titles.get(output.step, output.step),
            name=output.name,
            size=output.size,
            url=f"{base}/{quote(output.step)}/{quote(output.name)}",
        )
        for output in status.outputs
    ]


def log_tail(service: Service, run_id: str) -> tuple[list[LogLine], int]:
    """The first lines of the run's log, and the id to read on after."""
    lines = service.store.read_log(run_id, after=0, limit=LOG_LINES)
    return lines, lines[-1].id if lines else 0


def checked_status(service: Service, status: RunStatus) -> tuple[RunStatus, Staleness]:
    """The run as its page shows it now, and which of its results are stale.

    A succeeded run with stale results is queued for recomputation first (see
    :func:`gristmill.app.staleness.refresh`); the status returned is then the queued run's.
    """
    staleness = refresh(service, status.id)
    if staleness.state != status.state:  # queued again, by this view or another
        status = get_run(status.id, service=service)
        if status.state != staleness.state:  # and already recomputed
            staleness = check(service, status.id)
    return status, staleness


def run_page_context(
    service: Service, status: RunStatus, pipeline: Pipeline | None
) -> dict[str, Any]:
    """The template context of the run page, after :func:`checked_status` (which may queue a
    stale run again). Under ``status`` and ``staleness`` it holds what the view needs to add
    the results, when ``shows_results`` says there are results to show."""
    status, staleness = checked_status(service, status)
    run = status.run
    titles = {step.name: step.title for step in status.steps}
    context: dict[str, Any] = {
        "status": status,
        "run": run,
        "title": pipeline.title if pipeline is not None else run.pipeline,
        "pipeline": pipeline,
        "links": run_links(run.id),
        "terminal": run.state.is_terminal,
        "succeeded": run.state == RunState.SUCCEEDED,
        "staleness": staleness,
        "shows_results": run.state == RunState.SUCCEEDED or staleness.recomputing,
        "steps": [
            StepRow(
                name=step.name,
                title=step.title,
                state=str(step.state),
                attempt=f"attempt {step.attempt}" if step.attempt else "",
                duration=duration_text(step.duration),
                stale_attempt=str(step.attempt or "") if step.name in staleness.reasons else None,
            )
            for step in status.steps
        ],
    }
    context["timeline"] = timeline(
        [
            (step.name, str(step.state), step.attempt, step.started_at, step.finished_at)
            for step in status.steps
        ],
        now=time.time(),
        describe=duration_text,
    )
    context["params_json"] = json.dumps(run.params, sort_keys=True, ensure_ascii=False)
    if not run.state.is_terminal:
        lines, after = log_tail(service, run.id)
        known_total = run.progress_done is not None and bool(run.progress_total)
        context.update(
            stage=stage_text(status, titles),
            progress_known=known_total,
            log=lines,
            log_after=after,
        )
    if run.state != RunState.EXPIRED:
        panels = map_panels(service, status)
        context["maps"] = panels
        context["retryable"] = run.state.is_terminal and any(
            p.failed_total or p.partial for p in panels
        )
    if run.state == RunState.SUCCEEDED:
        context["outputs"] = output_links(status)
    if run.state == RunState.CANCELLED:
        context["cancel"] = cancellation(status, titles)
    if run.state == RunState.EXPIRED and run.error_message:
        context["expiry_reason"] = sentence(run.error_message)
    return context


@dataclass
class Cancellation:
    """What the page of a cancelled run says, once: who asked and when, where the run stopped,
    and whether its step had to be killed."""

    who: str
    at: datetime | None
    """When it was asked to stop; ``None`` if nobody asked through the site (Ctrl-C)."""
    where: str
    killed: bool = False
    note: str = ""
    """Why, when it was not asked through the site (a sentence)."""


_SAID_BY_CANCELLATION = {CANCELLED_MESSAGE, KILLED_MESSAGE, NEVER_STARTED_MESSAGE}


def cancellation(status: RunStatus, titles: dict[str, str]) -> Cancellation:
    """How a cancelled run's page explains it (see :class:`Cancellation`)."""
    run = status.run
    who = run.cancel_requested_by or "someone who was not signed in"
    message = run.error_message or ""
    note = "" if message in _SAID_BY_CANCELLATION or not message else sentence(message)
    if message == NEVER_STARTED_MESSAGE:
        where = "before it started"
    elif run.interrupted_step is not None:
        title = titles.get(run.interrupted_step, run.interrupted_step)
        where = f"while its step “{title}” was running"
    else:
        stored = {step.name for step in status.steps if step.attempt is not None}
        waiting = [step for step in status.steps if step.name not in stored]
        where = (
            f"before its step “{waiting[0].title}” started"
            if waiting
            else "as its last step finished"
        )
    return Cancellation(who, run.cancel_requested_at, where, message == KILLED_MESSAGE, note)


def sentence(message: str) -> str:
    """``message`` as a sentence: a capital first, a full stop last."""
    text = message.strip()
    text = text[:1].upper() + text[1:]
    return text if text.endswith((".", "!", "?")) else f"{text}."
