"""The operator's page (``/operator/``, staff only): the picture of a server at work.

Workers alive with their last heartbeat and what they are running, the queues' depth and
oldest wait, runs per hour by state over the last day, and how long steps take, as charts
drawn on the server (:mod:`gristmill.server.web.charts`). Anybody but staff gets 404. Every
figure comes from bounded aggregate queries, the same as ``/metrics``'s.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from django.db.models import Count
from django.db.models.functions import TruncHour
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render

from gristmill.app.service import default_service
from gristmill.server.access import session_caller
from gristmill.server.metrics import DURATION_BUCKETS, RECENT_STEPS, queues, recent_durations
from gristmill.server.web.charts import (
    BAR_COLOUR,
    STATE_COLOURS,
    Bar,
    Chart,
    Segment,
    bar_chart,
    number,
)
from gristmill.server.web.runs import duration_text
from gristmill.states import RunState

HOURS = 24
"""How many hours the runs-per-hour chart covers."""
WORKING_SHOWN = 100
"""The most claimed units listed."""


def supervisors(now: float, lease: float) -> list[dict[str, Any]]:
    from gristmill.server.models import Supervisor

    return [
        {
            "name": row.name,
            "workers": row.workers,
            "alive": now - row.beat_at < lease,
            "beat_age": duration_text(max(0.0, now - row.beat_at)),
            "up_for": duration_text(max(0.0, now - row.started_at)),
        }
        for row in Supervisor.objects.order_by("name")
    ]


def working(now: float) -> list[dict[str, Any]]:
    """What the workers are running now: each claimed unit, its run and current step."""
    from gristmill.server.models import WorkUnit

    units = (
        WorkUnit.objects.filter(state="claimed")
        .select_related("run")
        .order_by("id")[:WORKING_SHOWN]
    )
    return [
        {
            "worker": unit.worker or "",
            "run_id": str(unit.run_id),
            "pipeline": unit.run.pipeline,
            "step": unit.run.current_step or "",
            "kind": unit.kind,
            "attempt": unit.attempt,
            "lease_left": duration_text(max(0.0, (unit.lease_until or now) - now)),
        }
        for unit in units
    ]


def runs_per_hour(now: datetime, hours: int = HOURS) -> Chart:
    """Runs submitted in each of the last ``hours`` hours, stacked by their state now."""
    from gristmill.server.models import Run

    end = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    start = end - timedelta(hours=hours)
    rows = (
        Run.objects.filter(created_at__gte=start)
        .annotate(hour=TruncHour("created_at", tzinfo=UTC))
        .values_list("hour", "state")
        .annotate(n=Count("id"))
        .order_by()
    )
    counts: dict[tuple[datetime, str], int] = {}
    for hour, state, n in rows:
        key = (hour.astimezone(UTC), state)
        counts[key] = counts.get(key, 0) + n
    bars = []
    for index in range(hours):
        hour = start + timedelta(hours=index)
        segments = [
            Segment(
                counts.get((hour, state.value), 0),
                STATE_COLOURS[state.value],
                f"{hour:%H}:00-{hour:%H}:59 UTC: "
                f"{counts.get((hour, state.value), 0)} {state.value}",
            )
            for state in RunState
        ]
        bars.append(Bar(f"{hour:%H}h", segments))
    legend = [(STATE_COLOURS[state.value], state.value) for state in RunState]
    return bar_chart(
        f"Runs submitted per hour, last {hours} hours (UTC), by state",
        bars,
        label_every=3,
        legend=legend,
    )


def short_duration(seconds: float) -> str:
    """A bucket's bound: ``0.1s``, ``15s``, ``5m``, ``4h``."""
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds / size:g}{unit}"
    return f"{seconds:g}s"


def step_durations() -> tuple[Chart, int]:
    """How many of the latest steps took how long: one bar per duration bucket."""
    durations = recent_durations()
    bars = []
    lower = -1.0
    for upper in (*DURATION_BUCKETS, float("inf")):
        n = sum(1 for d in durations if lower < d <= upper)
        if upper == float("inf"):
            label, title = "longer", f"{n} took longer than {short_duration(lower)}"
        else:
            label = f"≤{short_duration(upper)}"
            title = f"{n} took over {short_duration(max(lower, 0))}, up to {short_duration(upper)}"
        bars.append(Bar(label, [Segment(n, BAR_COLOUR, title)]))
        lower = upper
    chart = bar_chart(
        f"Step durations, the latest {len(durations):,} steps (of at most {RECENT_STEPS:,})",
        bars,
    )
    return chart, len(durations)


def queue_chart(rows: list[tuple[str, int, float]]) -> Chart:
    bars = [
        Bar(queue, [Segment(waiting, BAR_COLOUR, f"{queue}: {number(waiting)} waiting")])
        for queue, waiting, _ in rows
    ]
    return bar_chart("Units waiting per queue", bars, height=160)


def operator_page(request: HttpRequest) -> HttpResponse:
    """The operator's page, for staff; 404 for anybody else."""
    if not session_caller(request).is_staff:
        raise Http404("no such page")
    now = time.time()
    lease = default_service().settings.lease_seconds
    waiting = queues()
    durations, measured = step_durations()
    context = {
        "supervisors": supervisors(now, lease),
        "working": working(now),
        "working_shown": WORKING_SHOWN,
        "queues": [
            {"name": name, "waiting": n, "oldest": duration_text(age)} for name, n, age in waiting
        ],
        "queue_chart": queue_chart(waiting),
        "runs_chart": runs_per_hour(datetime.fromtimestamp(now, UTC)),
        "durations_chart": durations,
        "measured": measured,
    }
    return render(request, "gristmill/operator.html", context)
