"""Reading the items of a data file, streamed, with errors a user can act on.

A library task reads one **data file**: the output of an earlier step it names (``source``),
else the run's first input. :func:`data_file` finds it and tells its format by content
(:func:`gristmill.authoring.sniffing.sniff`); :class:`ItemReader` yields its items one at a
time, so memory stays bounded whatever the file's size:

- JSON: the elements of the top-level array, or of the array at ``items`` (a dotted path of
  keys, e.g. ``"releases"``); a top-level object without ``items`` is one item;
- JSON Lines: one item a line;
- CSV and XLSX: one item a row, the first row naming the columns (see
  :mod:`gristmill.library.flattening`).

Broken data raises :class:`~gristmill.errors.TaskError` naming the file and, where the data has
them, the line and column.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
import re
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from gristmill.authoring.context import RunContext
from gristmill.authoring.sniffing import describe, sniff
from gristmill.errors import TaskError
from gristmill.library.flattening import FlatteningError, unflatten
from gristmill.library.positions import bad_utf8, position, utf8_error_start
from gristmill.library.workbooks import open_workbook

READABLE = ("json", "jsonl", "csv", "xlsx")
"""The formats whose items a library task reads."""

MAX_DEPTH = 2000
"""How deeply a JSON document may nest arrays and objects: deeper, and building its items
would take memory that grows with the square of the depth."""

_CHUNK = 1 << 20
_READ = 16 * 1024
_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_AT = re.compile(r" at (\d+)$")


@dataclass(frozen=True)
class DataFile:
    """The file a library task reads."""

    name: str
    """Its name as users see it (``data.json``, ``convert/data.json``)."""
    path: Path
    format: str | None
    """Its format by content (``json``, ``jsonl``, ``csv``, ``xlsx``, ...), or ``None``."""


def data_file(run: RunContext, sources: Sequence[str]) -> DataFile:
    """The first file made by one of the earlier steps ``sources`` (in that order), else the
    run's first input; a step that made none (skipped, or nothing to do) is passed over."""
    for step in sources:
        files = run.upstream_files(step)
        if files:
            chosen = files[0]
            return DataFile(f"{step}/{chosen.name}", chosen.path, judge(chosen.name, chosen.path))
    item = run.input
    return DataFile(item.name, item.path, judge(item.name, item.path))


def judge(name: str, path: Path) -> str | None:
    """The format of the file ``name`` at ``path``: by content
    (:func:`~gristmill.authoring.sniffing.sniff`), except that a damaged ZIP called ``.xlsx``
    is taken for a workbook (so that its reader says what is wrong), text called ``.csv`` or
    ``.tsv`` whose rows differ in width for a table, and JSON called ``.jsonl`` for JSON
    Lines."""
    found = sniff(path)
    suffix = Path(name).suffix.lower()
    if found == "zip" and suffix == ".xlsx":
        return "xlsx"
    if found in ("txt", "tsv") and suffix in (".csv", ".tsv"):
        return "csv"
    if found == "json" and suffix in (".jsonl", ".ndjson"):
        return "jsonl"  # its first lines did not each read as JSON: its reader says why
    return "csv" if found == "tsv" else found


def check_readable(file: DataFile, formats: Sequence[str] = READABLE) -> str:
    """``file``'s format if it is one of ``formats``; a :class:`TaskError` saying what is wrong
    otherwise (an empty file, text in UTF-16, a format this task does not read)."""
    size = file.path.stat().st_size
    if size == 0:
        raise TaskError(f"{file.name} is empty")
    with file.path.open("rb") as stream:
        head = stream.read(4)
    if any(head.startswith(bom) for bom in _BOMS):
        raise TaskError(f"{file.name} is UTF-16 or UTF-32 text; save it as UTF-8")
    found = file.format
    if found is None or found not in formats:
        accepted = ", ".join(describe(kind) for kind in formats)
        raise TaskError(f"{file.name} is {describe(file.format)}; this step reads {accepted}")
    return found


class _Counting(io.RawIOBase):
    """A binary stream that counts the bytes read through it, and passes them to ``watch``."""

    def __init__(self, raw: IO[bytes], watch: Callable[[bytes], None] | None = None):
        self.raw = raw
        self.position = 0
        self.watch = watch

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        self.raw.close()
        super().close()

    def read(self, size: int = -1) -> bytes:
        data = self.raw.read(size)
        self.position += len(data)
        if self.watch is not None:
            self.watch(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


class ItemReader:
    """The items of a data file, one at a time (see the module's docstring).

    ``done`` and ``total`` say how far reading has come (bytes, or rows of a spreadsheet), for
    :meth:`RunContext.progress`.
    """

    def __init__(self, file: DataFile, *, items: str | None = None, sheet: str | None = None):
        self.file = file
        self.format = check_readable(file)
        self.items = items
        self.sheet = sheet
        self.done = 0
        self.index = -1
        """The index of the item being worked on."""
        self.total: int | None = file.path.stat().st_size
        self._stream: _Counting | None = None

    def __iter__(self) -> Iterator[Any]:
        if self.format == "json":
            return self._json()
        if self.format == "jsonl":
            return self._json_lines()
        if self.format == "csv":
            return self._csv()
        return self._xlsx()

    def progress(self) -> tuple[int, int | None]:
        """(done, total) so far."""
        if self._stream is not None:
            self.done = self._stream.position
        return self.done, self.total

    def _open(self, watch: Callable[[bytes], None] | None = None) -> _Counting:
        self._stream = _Counting(self.file.path.open("rb"), watch)
        return self._stream

    def _prefix(self) -> str:
        if self.items:
            return ".".join(self.items.split(".")) + ".item"
        with self.file.path.open("rb") as stream:
            head = stream.read(_CHUNK).lstrip(b" \t\r\n\xef\xbb\xbf")
        return "item" if head.startswith(b"[") else ""

    def _json(self) -> Iterator[Any]:
        import ijson

        prefix = self._prefix()
        with self._open(_DepthGuard(self.file).watch) as stream:
            if stream.raw.read(3) != codecs.BOM_UTF8:  # the JSON parser refuses a BOM
                stream.raw.seek(0)
            try:
                yield from ijson.items(stream, prefix, use_float=True, buf_size=_READ)
            except ijson.JSONError:
                raise TaskError(self._json_error(prefix)) from None
        self.done = self.total or 0

    def _json_error(self, prefix: str) -> str:
        # The fast parser says what but not where; the pure-Python one says where.
        import ijson

        bad = bad_utf8(self.file.path)
        if bad:
            return f"{self.file.name} is not UTF-8 text: {bad}"
        python = ijson.get_backend("python")
        try:
            with self.file.path.open("rb") as stream:
                if stream.read(3) != codecs.BOM_UTF8:
                    stream.seek(0)
                for _ in python.items(stream, prefix, use_float=True):
                    pass
        except ijson.JSONError as error:
            text = str(error)
            found = _AT.search(text)
            if found:
                where = position(self.file.path, int(found.group(1)))
                return f"{self.file.name} is not valid JSON: {_AT.sub('', text)} at {where}"
            if "Incomplete" in text:
                where = position(self.file.path, None)
                return f"{self.file.name} is not valid JSON: it ends too early, at {where}"
            return f"{self.file.name} is not valid JSON: {text}"
        return f"{self.file.name} is not valid JSON"

    def _json_lines(self) -> Iterator[Any]:
        with self._open() as stream:
            for number, line in enumerate(io.BufferedReader(stream, _CHUNK), start=1):
                raw = line.removeprefix(codecs.BOM_UTF8) if number == 1 else line
                if not raw.strip():
                    continue
                try:
                    yield json.loads(raw)
                except json.JSONDecodeError as error:
                    raise TaskError(
                        f"{self.file.name} is not valid JSON Lines: line {number} column "
                        f"{error.colno}: {error.msg}"
                    ) from None
                except UnicodeDecodeError:
                    column = len(raw[: utf8_error_start(raw)].decode("utf-8")) + 1
                    raise TaskError(
                        f"{self.file.name} is not UTF-8 text: line {number} column {column}"
                    ) from None
                except (RecursionError, ValueError):
                    from gristmill.authoring.jsonload import loads

                    loads(raw, name=f"{self.file.name} line {number}")
                    raise

    def _csv(self) -> Iterator[Any]:
        delimiter = _csv_delimiter(self.file.path)
        with self._open() as stream:
            text = io.TextIOWrapper(io.BufferedReader(stream, _CHUNK), encoding="utf-8-sig")
            reader = csv.reader(text, delimiter=delimiter)
            try:
                header = next(reader, None)
                if header is None:
                    return
                for row in reader:
                    if any(row):
                        yield self._row(header, row, f"line {reader.line_num}")
            except UnicodeDecodeError:
                bad = bad_utf8(self.file.path)
                raise TaskError(f"{self.file.name} is not UTF-8 text: {bad}") from None
            except csv.Error as error:
                raise TaskError(
                    f"{self.file.name} is not valid CSV: line {reader.line_num}: {error}"
                ) from None

    def _row(self, header: Sequence[Any], row: Sequence[Any], where: str) -> Any:
        if len(header) and max(str(name).count("/") for name in header) >= MAX_DEPTH:
            raise TaskError(f"{self.file.name}: a column name nests more than {MAX_DEPTH:,} levels")
        if len(row) > len(header) and any(cell not in (None, "") for cell in row[len(header) :]):
            raise TaskError(
                f"{self.file.name}, {where}: {len(row)} cells, but the first row names "
                f"{len(header)} columns"
            )
        named = {str(name): cell for name, cell in zip(header, row, strict=False) if name}
        try:
            return unflatten(named)
        except FlatteningError as error:
            raise TaskError(f"{self.file.name}, {where}: {error}") from None

    def _xlsx(self) -> Iterator[Any]:
        book = open_workbook(self.file)
        try:
            sheet = book[self.sheet] if self.sheet else book.worksheets[0]
        except KeyError:
            book.close()
            raise TaskError(f"{self.file.name} has no sheet named {self.sheet!r}") from None
        self.total = sheet.max_row
        try:
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                return
            for number, row in enumerate(rows, start=2):
                self.done = number
                if any(cell not in (None, "") for cell in row):
                    yield self._row(header, row, f"row {number}")
        except TaskError:
            raise
        except Exception as error:  # a broken workbook can fail anywhere
            raise TaskError(f"{self.file.name} is not a readable XLSX file: {error}") from None
        finally:
            book.close()


class _DepthGuard:
    """Watches the bytes a JSON parser reads: when a chunk could take the nesting past
    :data:`MAX_DEPTH` (counting brackets, which is cheap but blind to strings), the whole file
    is measured exactly, once, and refused if it is that deep."""

    def __init__(self, file: DataFile):
        self.file = file
        self.depth = 0
        self.measured = False

    def watch(self, chunk: bytes) -> None:
        if self.measured:
            return
        opens = chunk.count(b"[") + chunk.count(b"{")
        if self.depth + opens > MAX_DEPTH:
            self.measure()
        self.depth += opens - chunk.count(b"]") - chunk.count(b"}")

    def measure(self) -> None:
        import ijson

        self.measured = True
        depth = 0
        try:
            with self.file.path.open("rb") as stream:
                for event, _ in ijson.basic_parse(stream):
                    if event in ("start_map", "start_array"):
                        depth += 1
                        if depth > MAX_DEPTH:
                            raise TaskError(
                                f"{self.file.name} nests arrays and objects more than "
                                f"{MAX_DEPTH:,} levels deep, which is more than can be checked"
                            )
                    elif event in ("end_map", "end_array"):
                        depth -= 1
        except ijson.JSONError:
            pass  # broken: the parser that reads the items says where


def _csv_delimiter(path: Path) -> str:
    # Only the delimiter is guessed: quoting is always '"', as every spreadsheet writes it (a
    # guessed quote character takes a value starting with ' for a quoted one).
    with path.open("rb") as stream:
        head = stream.read(64 * 1024).decode("utf-8", errors="replace")
    lines = head.splitlines()[:50]
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=",;\t|").delimiter
    except csv.Error:
        return ","
