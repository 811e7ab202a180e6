"""Item readers: how a map step reads the items of its dataset, streamed, never loaded whole.

``gristmill.items.json_lines("data.jsonl")`` reads one JSON value per line, and is the fast
path: the engine cuts the file into byte ranges (finding line ends, parsing nothing) and each
batch's worker parses only its range. ``json_array`` (the elements under an ijson prefix) and
``csv_rows`` (one dict per row), or any generator function ``(run) -> Iterator[item]``, are
read once by the run's worker, which writes each batch's items to a JSON Lines file of its own
in the run's storage for the batch workers.

An input is named by its file name (``"data.jsonl"``), its name without the extension
(``"data"``) or its position (``0``); ``None`` is the first input.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from gristmill.errors import TaskError

if TYPE_CHECKING:
    from gristmill.authoring.context import InputFile, RunContext

InputRef = str | int | None


def find_input(run: RunContext, ref: InputRef) -> InputFile:
    """The input ``ref`` names (see the module docstring); a :class:`TaskError` if none."""
    if ref is None:
        return run.input
    if isinstance(ref, int):
        if 0 <= ref < len(run.inputs):
            return run.inputs[ref]
    else:
        for given in run.inputs:
            if ref in (given.name, given.name.rsplit(".", 1)[0]):
                return given
    names = ", ".join(repr(i.name) for i in run.inputs) or "none"
    raise TaskError(f"this step reads the input {ref!r}, which the run does not have ({names})")


class ItemReader:
    """How a map step reads its items. Subclasses say what they read (:attr:`description`,
    part of the step's fingerprint) and yield the items of a run."""

    description: str = ""

    def items(self, run: RunContext) -> Iterator[Any]:
        """Yield the run's items in order, streamed."""
        raise NotImplementedError


class JsonLines(ItemReader):
    """One JSON value per line; blank lines count as items with nothing to check."""

    def __init__(self, input: InputRef = None):
        self.input = input
        self.description = f"json_lines({input!r})"

    def items(self, run: RunContext) -> Iterator[Any]:
        with find_input(run, self.input).open("rb") as stream:
            for line in stream:
                yield json.loads(line) if line.strip() else None


class JsonArray(ItemReader):
    """The elements under ``prefix`` of a JSON document (ijson's prefixes: ``"item"`` is each
    element of a top-level array, ``"records.item"`` each element of ``{"records": [...]}``)."""

    def __init__(self, input: InputRef = None, prefix: str = "item"):
        self.input = input
        self.prefix = prefix
        self.description = f"json_array({input!r}, prefix={prefix!r})"

    def items(self, run: RunContext) -> Iterator[Any]:
        import ijson  # a core dependency, imported when a map step reads JSON

        given = find_input(run, self.input)
        with given.open("rb") as stream:
            try:
                yield from ijson.items(stream, self.prefix, use_float=True)
            except ijson.JSONError as error:
                raise TaskError(f"{given.name} is not valid JSON: {error}") from None


class CsvRows(ItemReader):
    """The rows of a CSV file with a header row, each a dict by column name."""

    def __init__(self, input: InputRef = None):
        self.input = input
        self.description = f"csv_rows({input!r})"

    def items(self, run: RunContext) -> Iterator[Any]:
        given = find_input(run, self.input)
        with given.path.open(newline="", encoding="utf-8-sig") as text:
            try:
                yield from csv.DictReader(text)
            except UnicodeDecodeError:
                raise TaskError(f"{given.name} is not UTF-8 text; save it as UTF-8") from None


class Generated(ItemReader):
    """The items a function ``(run) -> Iterator[item]`` yields."""

    def __init__(self, function: Callable[[RunContext], Any]):
        from gristmill.authoring.fingerprints import normalised_source

        self.function = function
        self.description = f"generated({normalised_source(function)})"

    def items(self, run: RunContext) -> Iterator[Any]:
        yield from self.function(run)


def json_lines(input: InputRef = None) -> JsonLines:
    """Read one JSON value per line of ``input`` (the fast path: cut by byte ranges)."""
    return JsonLines(input)


def json_array(input: InputRef = None, prefix: str = "item") -> JsonArray:
    """Read the elements under ``prefix`` of the JSON document ``input``, streamed by ijson."""
    return JsonArray(input, prefix)


def csv_rows(input: InputRef = None) -> CsvRows:
    """Read the rows of the CSV file ``input`` as dicts by column name."""
    return CsvRows(input)


def as_reader(items: ItemReader | Callable[[RunContext], Any]) -> ItemReader:
    """``items`` as a reader: a reader as it is, a function as :class:`Generated`."""
    if isinstance(items, ItemReader):
        return items
    if callable(items):
        return Generated(items)
    raise TypeError(f"items must be a reader of gristmill.items or a function, not {items!r}")


__all__ = ["ItemReader", "csv_rows", "json_array", "json_lines"]
