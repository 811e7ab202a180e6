"""Telling a data file's format by its content."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.authoring.sniffing import describe
from gristmill.errors import TaskError
from gristmill.library.base import LibraryTask

KNOWN = ("json", "jsonl", "csv", "xlsx", "ods", "zip")
"""The formats :class:`DetectFormat` accepts."""


class DetectFormat(LibraryTask):
    """Name the data file's format by its content: JSON, JSON Lines, CSV, XLSX, ODS or ZIP.

    The result is ``{"file", "format", "description"}``; any other content (or an empty file)
    fails the step with a message saying what was found. Uses
    :func:`gristmill.authoring.sniffing.sniff`: the look of the file, not its validity (a
    broken JSON file is JSON here; the step that parses it says where it is broken).
    """

    title = "Format"
    description = "Tells the data's format by its content."

    def __init__(self, *, accept: tuple[str, ...] = KNOWN, **options: Any):
        self.accept = accept
        super().__init__(accept=accept, **options)

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        file = self.data(run)
        if file.path.stat().st_size == 0:
            raise TaskError(f"{file.name} is empty")
        if file.format not in self.accept:
            accepted = ", ".join(describe(kind) for kind in self.accept)
            raise TaskError(f"{file.name} is {describe(file.format)}; expected {accepted}")
        return {"file": file.name, "format": file.format, "description": describe(file.format)}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return super().context(run, result)
        return {"summary": f"{result['file']} is {result['description']}."}
