"""The live run display shared by ``gristmill run`` and ``gristmill submit --wait``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn


class RunDisplay:
    """A progress bar with the current step and stage, and log lines printed above it."""

    def __init__(self, progress: Progress):
        self._progress = progress
        self._bar = progress.add_task("queued", total=None)

    def log(self, step: str, text: str) -> None:
        prefix = f"[dim]{escape(step)}[/] " if step else ""
        self._progress.console.print(f"{prefix}{escape(text)}", highlight=False)

    def update(
        self, state: str, step: str | None, stage: str | None, done: int | None, total: int | None
    ) -> None:
        description = " · ".join(part for part in (step, stage) if part) or state
        self._progress.update(self._bar, description=description, completed=done or 0, total=total)


class ConsoleLogHandler(logging.Handler):
    """Prints log records, tracebacks and their source lines included, through ``console``.

    A handler writing to ``sys.stderr`` itself would write into the live run display: in a
    terminal its first line joined the progress bar and the bar's next redraw overwrote lines
    of a traceback. Through the console, rich prints each record whole above the display.
    """

    def __init__(self, console: Console):
        super().__init__()
        self.console = console

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:
            self.handleError(record)
            return
        self.console.print(text, markup=False, highlight=False, soft_wrap=True)


@contextmanager
def run_display(console: Console) -> Iterator[RunDisplay]:
    """Show a run's progress on ``console`` while the block runs; it vanishes at the end."""
    with Progress(
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=console,
        transient=True,
    ) as progress:
        yield RunDisplay(progress)


def map_lines(summary: dict[str, Any]) -> list[str]:
    """What ``gristmill status`` says of one map step, under its step: items and batches,
    findings by kind, failed batches (never a line per item)."""
    batches = summary["batches"]
    ended = summary["batches_total"] - batches.get("pending", 0)
    items = f"items {summary['items_done']:,} of {summary['items_total']:,}"
    if summary["items_failed"]:
        items += f" ({summary['items_failed']:,} failed)"
    items += f", batches {ended:,} of {summary['batches_total']:,}"
    ended_badly = [f"{batches[s]:,} {s}" for s in ("failed", "skipped") if batches.get(s)]
    if ended_badly:
        items += f" ({', '.join(ended_badly)})"
    lines = [items + (" [partial]" if summary["partial"] else "")]
    counts = sorted(summary["counts"].items(), key=lambda pair: (-pair[1], pair[0]))
    if counts:
        found = ", ".join(f"{kind} {count:,}" for kind, count in counts)
        lines.append(f"findings{' so far' if summary['partial'] else ''}: {found}")
    for batch in summary["failed_batches"]:
        last = batch["first_item"] + batch["items"] - 1
        what = batch["error"] or f"{batch['failed_items_total']:,} failed items"
        lines.append(
            f"failed batch {batch['number']} (items {batch['first_item']:,}-{last:,}): {what}"
        )
    more = summary["failed_batches_total"] - len(summary["failed_batches"])
    if more > 0:
        lines.append(f"and {more:,} more failed batches")
    return lines
