"""Log control for a running step: library logging and warnings into the run log, at the
step's level, with repeated lines collapsed.

While a step runs, :func:`step_logging` (used by the engine around ``process``) does two things:

- with the task's ``log_level`` set, Python :mod:`logging` records emitted in the step's thread
  at or above that level (by any library) go into the run log on the ``logging`` stream, and
  :func:`warnings.warn` calls on the ``warning`` stream (``UserWarning: message``);
- every line a step sends to the run log (``run.log``, a command's stdout and stderr, the
  records above) passes a :class:`RepeatCap`: the same line (for a warning, the same category
  and message) is shown :data:`REPEATS_SHOWN` times, and the rest are counted and said once at
  the step's end, as ``… 4,812 more like this: <line>``. Memory stays bounded: at most
  :data:`TRACKED_LINES` distinct lines are counted; beyond that, lines pass uncounted.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import warnings
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from gristmill.authoring.context import RunContext
    from gristmill.authoring.tasks import Task

REPEATS_SHOWN = 3
"""How many times the same line is shown before the rest are only counted."""

TRACKED_LINES = 2_000
"""How many distinct lines a step's cap counts at most."""

_KEY_CHARS = 300


class RepeatCap:
    """Counts a step's log lines by what they say; lets each through :data:`REPEATS_SHOWN`
    times."""

    def __init__(self, shown: int = REPEATS_SHOWN, tracked: int = TRACKED_LINES):
        self.shown = shown
        self.tracked = tracked
        self._counts: dict[tuple[str, str], list[Any]] = {}
        self._lock = threading.Lock()

    def admit(self, stream: str, text: str, key: str | None = None) -> bool:
        """Whether to show this line now; ``key`` groups lines that are the same for people
        (default: the text itself). Empty lines always pass."""
        if not text.strip():
            return True
        counted = (stream, (key if key is not None else text)[:_KEY_CHARS])
        with self._lock:
            entry = self._counts.get(counted)
            if entry is None:
                if len(self._counts) < self.tracked:
                    self._counts[counted] = [1, text]
                return True
            entry[0] += 1
            return bool(entry[0] <= self.shown)

    def summary(self) -> list[tuple[str, str]]:
        """``(stream, line)`` for each line that was held back, and forget the counts."""
        with self._lock:
            held = [
                (stream, f"… {count - self.shown:,} more like this: {text}")
                for (stream, _), (count, text) in self._counts.items()
                if count > self.shown
            ]
            self._counts.clear()
        return held


class _ToRunLog(logging.Handler):
    """Sends the records of one thread to a run's log."""

    def __init__(self, run: RunContext, level: int):
        super().__init__(level)
        self.run = run
        self.thread = threading.get_ident()
        self.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        if record.thread != self.thread:
            return
        try:
            text = self.format(record)
        except Exception:  # a record that cannot be formatted is not worth failing a step
            text = f"{record.levelname} {record.name}: {record.msg!r}"
        key = f"{record.levelname} {record.name} {record.msg}"  # the same call, any arguments
        self.run.emit(text, "logging", key=key)


class _BelowLevel(logging.Filter):
    """Keeps the process's own handlers as they were while the root level is lowered."""

    def __init__(self, level: int):
        super().__init__()
        self.level = level

    def filter(self, record: logging.LogRecord) -> bool:
        return record.levelno >= self.level


@contextlib.contextmanager
def step_logging(run: RunContext, task: Task) -> Iterator[None]:
    """Capture library logging and warnings into ``run``'s log at ``task.log_level`` while
    the block runs, and say the held-back repeats at its end (see the module)."""
    threshold = task.log_threshold
    try:
        if threshold is None:
            yield
        else:
            with _captured(run, threshold):
                yield
    finally:
        run.flush_repeats()


@contextlib.contextmanager
def _captured(run: RunContext, threshold: int) -> Iterator[None]:
    root = logging.getLogger()
    handler = _ToRunLog(run, threshold)
    previous = root.level
    keep = _BelowLevel(previous)
    lowered = threshold < previous
    if lowered:
        for existing in root.handlers:
            existing.addFilter(keep)
        root.setLevel(threshold)
    root.addHandler(handler)
    try:
        with warnings.catch_warnings():
            if threshold <= logging.WARNING:
                warnings.simplefilter("always")  # counted and collapsed here, not dropped

                def show(
                    message: Warning | str,
                    category: type[Warning],
                    filename: str,
                    lineno: int,
                    file: TextIO | None = None,
                    line: str | None = None,
                ) -> None:
                    text = f"{category.__name__}: {message}"
                    run.emit(text, "warning", key=text)

                warnings.showwarning = show
            yield
    finally:
        root.removeHandler(handler)
        if lowered:
            root.setLevel(previous)
            for existing in root.handlers:
                existing.removeFilter(keep)
