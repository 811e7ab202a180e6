"""Charts drawn on the server as SVG: the geometry here, the markup in
``gristmill/chart.html`` and ``gristmill/timeline.html``. No JavaScript and no chart library:
bars and their labels are all these pages need, and every bar has a ``<title>`` that says its
figure (and a table beside it says them all, for screen readers)."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

STATE_COLOURS = {
    "queued": "#9ca3af",
    "running": "#2563eb",
    "succeeded": "#15803d",
    "failed": "#b91c1c",
    "cancelled": "#b45309",
    "expired": "#4b5563",
    "skipped": "#d1d5db",
    "pending": "#e5e7eb",
}
"""The fill of a bar (or part of one) by run or step state."""
BAR_COLOUR = "#2563eb"


@dataclass
class Segment:
    """One part of a stacked bar."""

    value: float
    colour: str
    title: str


@dataclass
class Bar:
    label: str
    segments: list[Segment]

    @property
    def total(self) -> float:
        return sum(segment.value for segment in self.segments)


@dataclass
class Rect:
    x: float
    y: float
    width: float
    height: float
    colour: str
    title: str


@dataclass
class Label:
    x: float
    y: float
    text: str


@dataclass
class Chart:
    """A bar chart ready to draw: its size, rectangles, and axis labels."""

    title: str
    width: int
    height: int
    rects: list[Rect] = field(default_factory=list)
    labels: list[Label] = field(default_factory=list)
    ticks: list[Label] = field(default_factory=list)
    legend: list[tuple[str, str]] = field(default_factory=list)
    """``(colour, name)`` of each kind of segment shown."""
    empty: bool = True


LEFT, BOTTOM, TOP = 44.0, 34.0, 8.0


def nice_ceiling(value: float) -> float:
    """The smallest of 1, 2, 5 times a power of ten at or above ``value`` (1 for none)."""
    if value <= 0:
        return 1.0
    power = 10 ** math.floor(math.log10(value))
    for step in (1, 2, 5, 10):
        if step * power >= value:
            return float(step * power)
    return float(10 * power)  # pragma: no cover - the loop ends at 10


def number(value: float) -> str:
    return f"{value:,.0f}" if value == int(value) else f"{value:,.1f}"


def bar_chart(
    title: str,
    bars: list[Bar],
    *,
    width: int = 640,
    height: int = 200,
    label_every: int = 1,
    legend: list[tuple[str, str]] | None = None,
) -> Chart:
    """Vertical bars, stacked by segment, on a y axis from 0 to a round top; every
    ``label_every``-th bar labelled under the axis."""
    chart = Chart(title, width, height, legend=legend or [])
    top = nice_ceiling(max((bar.total for bar in bars), default=0.0))
    plot_width = width - LEFT - 4
    plot_height = height - BOTTOM - TOP
    chart.empty = not any(bar.total for bar in bars)
    for fraction in (0.0, 0.5, 1.0):
        chart.ticks.append(
            Label(LEFT - 6, TOP + plot_height * (1 - fraction) + 4, number(top * fraction))
        )
    if not bars:
        return chart
    slot = plot_width / len(bars)
    bar_width = max(1.0, slot * 0.8)
    for index, bar in enumerate(bars):
        x = LEFT + index * slot + (slot - bar_width) / 2
        base = TOP + plot_height
        for segment in bar.segments:
            if segment.value <= 0:
                continue
            h = plot_height * segment.value / top
            base -= h
            chart.rects.append(Rect(x, base, bar_width, h, segment.colour, segment.title))
        if index % label_every == 0:
            chart.labels.append(Label(x + bar_width / 2, height - BOTTOM + 16, bar.label))
    return chart


@dataclass
class TimelineRow:
    """One step of a run on its timeline."""

    name: str
    state: str
    attempt: str
    x: float
    width: float
    y: float
    colour: str
    title: str


@dataclass
class Timeline:
    width: int
    height: int
    rows: list[TimelineRow]
    span: str
    """How long the whole run took, as text."""
    name_width: float


def timeline(
    steps: list[tuple[str, str, int | None, float | None, float | None]],
    *,
    now: float,
    describe: Callable[[float], str],
    width: int = 640,
    row_height: int = 22,
) -> Timeline | None:
    """Each step's latest attempt as a bar from its start to its end (or ``now`` while it
    runs), on one time axis from the first start; ``None`` before any step started. ``steps``
    are ``(name, state, attempt, started_at, finished_at)``."""
    started = [s for s in steps if s[3] is not None]
    if not started:
        return None
    first = min(s[3] for s in started if s[3] is not None)
    last = max((s[4] if s[4] is not None else now) for s in started)
    span = max(last - first, 1e-3)
    name_width = 160.0
    plot = width - name_width - 8
    rows = []
    for index, (name, state, attempt, begin, end) in enumerate(started):
        assert begin is not None  # started steps only
        finish = end if end is not None else now
        x = name_width + plot * (begin - first) / span
        w = max(2.0, plot * (finish - begin) / span)
        took = describe(finish - begin)
        attempt_text = f", attempt {attempt}" if attempt else ""
        rows.append(
            TimelineRow(
                name=name,
                state=state,
                attempt=str(attempt or ""),
                x=x,
                width=w,
                y=index * row_height + 4,
                colour=STATE_COLOURS.get(state, BAR_COLOUR),
                title=f"{name}: {state}{attempt_text}, {took}",
            )
        )
    return Timeline(width, len(rows) * row_height + 8, rows, describe(span), name_width - 8)
