"""What gristmill's log records are about: the run and the step being worked on, and the
formatter that writes each record as one JSON object per line (``GRISTMILL_LOG_FORMAT=json``).

A worker sets the run (:func:`about_run`) around a unit and the engine the step around each
step, so that every record logged meanwhile, by gristmill or a library, carries them; a record
may also name them itself (``logger.info(..., extra={"run_id": ..., "step": ...})``).
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime

_run: contextvars.ContextVar[str | None] = contextvars.ContextVar("gristmill_run", default=None)
_step: contextvars.ContextVar[str | None] = contextvars.ContextVar("gristmill_step", default=None)


@contextlib.contextmanager
def about(*, run_id: str | None = None, step: str | None = None) -> Iterator[None]:
    """Within the block, log records are about ``run_id`` (and ``step``, when given)."""
    tokens = []
    if run_id is not None:
        tokens.append((_run, _run.set(run_id)))
    if step is not None:
        tokens.append((_step, _step.set(step)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line: ``time`` (ISO 8601, UTC), ``level``,
    ``logger``, ``message``, ``run_id`` and ``step`` when known, and ``exception`` (the
    traceback) when the record has one."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        run_id = getattr(record, "run_id", None) or _run.get()
        step = getattr(record, "step", None) or _step.get()
        if run_id:
            data["run_id"] = str(run_id)
        if step:
            data["step"] = str(step)
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)
