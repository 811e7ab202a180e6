"""What a pipeline accepts as input, and the inputs a submitter hands over.

A pipeline declares :class:`Inputs` (which kinds, extensions, sizes and how many). A submitter
passes a list of :data:`InputSource` values: a local path, an :class:`Upload` (a name and a binary
stream), :class:`JsonInput` / :class:`TextInput` for inline data, a :class:`UrlInput` that the
server fetches, :class:`RunOutputs` (the output files of an earlier run) or :class:`RunItems`
(the items of an earlier run that match a filter).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import IO, Any

from gristmill.errors import DefinitionError


class InputKind(StrEnum):
    """How an input reaches a run."""

    FILE = "file"
    """A file uploaded by the user (or a local path given to ``gristmill run``)."""
    JSON = "json"
    """JSON typed or pasted inline, stored as ``input.json``."""
    TEXT = "text"
    """Text typed or pasted inline, stored as ``input.txt``."""
    URL = "url"
    """A public http(s) URL, fetched by the run's worker before its first step."""
    DATAFILE = "datafile"
    """A data file already stored on the server."""
    RUN = "run"
    """The outputs of an earlier run."""
    ITEMS = "items"
    """The items of an earlier run's map step that match a filter, as JSON Lines, chosen by
    the run's worker before its first step (a *filtered run*)."""


DEFAULT_MAX_SIZE = 100 * 1024 * 1024


@dataclass(frozen=True)
class Inputs:
    """The inputs a pipeline accepts."""

    kinds: Sequence[InputKind | str] = (InputKind.FILE, InputKind.JSON, InputKind.TEXT)
    """Which kinds of input are offered."""
    extensions: Sequence[str] | None = None
    """Accepted file extensions without the dot (``["json", "csv"]``); ``None`` accepts any."""
    max_size: int = DEFAULT_MAX_SIZE
    """Largest accepted input, in bytes."""
    min_count: int = 1
    """Fewest inputs a run needs."""
    max_count: int = 1
    """Most inputs a run takes."""

    def __post_init__(self) -> None:
        try:
            kinds = tuple(InputKind(kind) for kind in self.kinds)
        except ValueError as error:
            known = ", ".join(kind.value for kind in InputKind)
            raise DefinitionError(
                f"unknown input kind in {list(self.kinds)!r}; known: {known}"
            ) from error
        object.__setattr__(self, "kinds", kinds)
        if self.extensions is not None:
            if isinstance(self.extensions, str):
                raise DefinitionError("extensions must be a list, e.g. ['json', 'csv']")
            exts = tuple(ext.lower().lstrip(".") for ext in self.extensions)
            object.__setattr__(self, "extensions", exts)
        if self.max_size <= 0:
            raise DefinitionError("max_size must be a positive number of bytes")
        if not 0 <= self.min_count <= self.max_count:
            raise DefinitionError("inputs need 0 <= min_count <= max_count")

    def describe(self) -> dict[str, Any]:
        """The accepted inputs as plain JSON data (for the API and the forms)."""
        return {
            "kinds": [str(kind) for kind in self.kinds],
            "extensions": list(self.extensions) if self.extensions is not None else None,
            "max_size": self.max_size,
            "min_count": self.min_count,
            "max_count": self.max_count,
        }


@dataclass
class Upload:
    """A file handed over as a binary stream, e.g. from an HTTP upload."""

    name: str
    stream: IO[bytes]
    media_type: str | None = None
    kind: InputKind = InputKind.FILE
    source: str = ""


@dataclass
class JsonInput:
    """Inline JSON data."""

    value: Any
    name: str = "input.json"


@dataclass
class TextInput:
    """Inline text."""

    text: str
    name: str = "input.txt"


@dataclass
class LocalFile:
    """A file on the submitting machine's disk (``gristmill run``, Python callers)."""

    path: Path
    name: str | None = None
    media_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    kind: InputKind = InputKind.FILE
    """How it reached the run (a stored data file is handed over as a local file too)."""
    source: str = ""
    """Where it came from, for people (e.g. ``data file 6f1c…``)."""


@dataclass
class UrlInput:
    """A public http(s) URL, fetched by the run's worker before its first step."""

    url: str


@dataclass
class RunOutputs:
    """The output files of an earlier run, each becoming one input of the new run."""

    run_id: str
    step: str | None = None
    """Only this step's outputs (``None``: every step's)."""


@dataclass
class RunItems:
    """The items of an earlier run's map step that match a filter, as one JSON Lines input
    (``items.jsonl``) written by the new run's worker before its first step: those where
    ``where`` (a path, see :mod:`gristmill.authoring.filters`) equals ``value``, or those the
    step found a finding of kind ``finding`` for. ``step`` may be left out when the run's
    pipeline has one map step."""

    run_id: str
    step: str | None = None
    where: str | None = None
    value: Any = None
    finding: str | None = None


InputSource = (
    Path | str | Upload | JsonInput | TextInput | LocalFile | UrlInput | RunOutputs | RunItems
)
"""Anything :func:`gristmill.app.submission.submit` accepts as one input."""


def human_size(size: int) -> str:
    """A size in bytes for people: ``512 bytes``, ``1.5 KiB``, ``100 MiB``."""
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:g} {unit}"
        value /= 1024
    return f"{size} bytes"


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def safe_name(name: str, *, fallback: str = "input") -> str:
    """Return ``name`` reduced to a safe base file name (no directories, no leading dots)."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFKD", base).encode("ascii", "ignore").decode("ascii")
    base = _UNSAFE.sub("_", base).strip("._-")[:120]
    return base or fallback
