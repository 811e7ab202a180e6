"""Converting a stored data file to another datatype: JSON ↔ CSV / XLSX, as a new data file.

The conversion is the task library's own (:class:`~gristmill.library.convert.SpreadsheetToJson`
and :class:`~gristmill.library.convert.JsonToSpreadsheet`), run here in the request in a
private work directory of the data directory instead of in a pipeline, so it streams the same
way: items are read and written one at a time, never the whole file in memory. CSV ↔ XLSX goes
through JSON.

The new data file belongs to the caller (also when staff convert someone else's file), is
named after the original (``data.json`` → ``data.csv``) and is stored like an upload: within
the data file size limit, and kept as a JSON document when it is JSON.
"""

from __future__ import annotations

import tempfile
import uuid
from pathlib import Path, PurePath

from gristmill.app.service import Service
from gristmill.authoring.context import InputFile, RunContext
from gristmill.authoring.sniffing import describe
from gristmill.authoring.tasks import Task
from gristmill.errors import TaskError
from gristmill.library.convert import JsonToSpreadsheet, SpreadsheetToJson
from gristmill.library.reading import judge
from gristmill.server import datafiles
from gristmill.server.access import Caller
from gristmill.server.models import DataFile

__all__ = ["TARGETS", "ConversionError", "convert"]

TARGETS = ("json", "csv", "xlsx")
"""The datatypes a data file converts to."""

_SPREADSHEETS = ("csv", "xlsx")
_JSON = ("json", "jsonl")
_MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


class ConversionError(ValueError):
    """A conversion refused, or data the converter cannot read; the message says why."""


def convert(caller: Caller, file_id: str | uuid.UUID, to: str, *, service: Service) -> DataFile:
    """The data file ``file_id`` converted to ``to`` (one of :data:`TARGETS`), stored as a new
    data file of ``caller``.

    Raises :class:`~gristmill.errors.NotFoundError` if the caller may not see the file,
    :class:`ConversionError` for a target not offered, a file that is not JSON, JSON Lines,
    CSV or XLSX, one already of the target's type, or data the converter cannot read (the
    message names the line or row), and :class:`~gristmill.errors.TooLargeError` if the
    result is over the data file size limit (nothing is kept).
    """
    if to not in TARGETS:
        raise ConversionError(f"cannot convert to {to!r}: choose one of {', '.join(TARGETS)}")
    datafile = datafiles.get(caller, file_id)
    source = datafiles.stored_path(datafile, service)
    found = judge(datafile.name, source)
    if found not in _SPREADSHEETS + _JSON:
        raise ConversionError(
            f"{datafile.name} is {describe(found)}; conversion reads JSON, JSON Lines, CSV or XLSX"
        )
    if found == to or (found in _JSON and to == "json"):
        raise ConversionError(f"{datafile.name} is already {describe(found)}")
    name = str(PurePath(datafile.name).with_suffix(f".{to}"))
    with tempfile.TemporaryDirectory(prefix="convert-", dir=service.settings.data_dir) as work:
        converted = _run_conversion(datafile.name, source, found, to, Path(work))
        with converted.open("rb") as stream:
            return datafiles.create(
                caller, name, stream, media_type=_MEDIA_TYPES[to], service=service
            )


def _run_conversion(name: str, source: Path, found: str, to: str, work: Path) -> Path:
    if found in _SPREADSHEETS:
        source = _run_task(SpreadsheetToJson(), name, source, work / "json")
        name = str(PurePath(name).with_suffix(".json"))
        if to == "json":
            return source
    return _run_task(JsonToSpreadsheet(format=to), name, source, work / to)


def _run_task(task: Task, name: str, source: Path, workdir: Path) -> Path:
    workdir.mkdir()
    item = InputFile(name, source, source.stat().st_size, "", "", kind="datafile")
    context = RunContext(
        run_id="conversion",
        pipeline="conversion",
        step=task.name or type(task).__name__,
        inputs=(item,),
        params={},
        workdir=workdir,
        upstream={},
    )
    try:
        task.process(context, {})
    except TaskError as error:
        raise ConversionError(str(error)) from None
    if not context.outputs:  # the task found nothing to convert: never for a checked format
        raise ConversionError(f"{name} has nothing to convert")
    return context.outputs[0].path
