"""What a task sees while it runs: the run context.

A :class:`RunContext` is handed to every task method. It carries the run's inputs and validated
parameters, a private work directory, the results of earlier steps, and the calls a task uses to
report: :meth:`~RunContext.log`, :meth:`~RunContext.stage`, :meth:`~RunContext.progress` and
:meth:`~RunContext.output`.
"""

from __future__ import annotations

import contextlib
import hashlib
import mimetypes
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

from gristmill.errors import CancelledError, TaskError

if TYPE_CHECKING:
    pass


@dataclass(frozen=True, slots=True)
class InputFile:
    """One input of a run, as stored on the server."""

    name: str
    """The file name the user gave (made safe), e.g. ``data.json``."""
    path: Path
    """Where the bytes are; read-only for tasks."""
    size: int
    """Size in bytes."""
    sha256: str
    """Hex SHA-256 digest of the bytes."""
    media_type: str
    """Media type guessed from the name, or given by the submitter."""
    kind: str = "file"
    """How the data arrived: ``file``, ``json``, ``text``, ``url``, ``datafile`` or ``run``."""
    source: str = ""
    """Where it came from, when that is not the user's disk (a URL, a data file, a run id)."""

    @property
    def extension(self) -> str:
        """The lower-cased extension without the dot (``"json"``), or ``""``."""
        return Path(self.name).suffix.lower().lstrip(".")

    def open(self, mode: str = "rb") -> IO[Any]:
        """Open the input for reading (``"rb"`` or ``"r"``)."""
        if "w" in mode or "a" in mode or "+" in mode:
            raise ValueError("inputs are read-only")
        if "b" in mode:
            return self.path.open(mode)
        return self.path.open(mode, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class OutputFile:
    """An output file a step registered with :meth:`RunContext.output`."""

    name: str
    path: Path
    size: int
    sha256: str
    media_type: str


class Reporter(Protocol):
    """Where a run context sends what a task reports. The engine implements it."""

    def log(self, text: str, stream: str) -> None: ...
    def stage(self, name: str | None) -> None: ...
    def progress(self, done: int, total: int | None) -> None: ...
    def is_cancelled(self) -> bool: ...


class MapResults(Protocol):
    """Where a run context reads the results of map steps. The engine implements it."""

    def findings(self, step: str, kind: str | None) -> Iterator[tuple[int, Any]]: ...
    def summary(self, step: str) -> dict[str, Any]: ...


class _SilentReporter:
    """Used when a context is built only to ask cheap questions (planning, the results page)."""

    def log(self, text: str, stream: str) -> None:
        pass

    def stage(self, name: str | None) -> None:
        pass

    def progress(self, done: int, total: int | None) -> None:
        pass

    def is_cancelled(self) -> bool:
        return False


class RunContext:
    """The run, as one step of it sees it."""

    def __init__(
        self,
        *,
        run_id: str,
        pipeline: str,
        step: str,
        inputs: tuple[InputFile, ...],
        params: Any,
        workdir: Path | Callable[[], Path],
        upstream: Mapping[str, Any],
        attempt: int = 1,
        ancestor: str | None = None,
        reporter: Reporter | None = None,
        maps: MapResults | None = None,
    ):
        self.run_id = run_id
        self._maps = maps
        self.pipeline = pipeline
        self.step = step
        self.inputs = inputs
        self.params = params
        self._workdir = workdir
        self.upstream = upstream
        self.attempt = attempt
        self.ancestor = ancestor
        self._reporter: Reporter = reporter or _SilentReporter()
        self._outputs: dict[str, OutputFile] = {}

    @property
    def workdir(self) -> Path:
        """The step's private work directory, created on first use."""
        if not isinstance(self._workdir, Path):
            self._workdir = self._workdir()
        return self._workdir

    @workdir.setter
    def workdir(self, value: Path | Callable[[], Path]) -> None:
        self._workdir = value

    @property
    def input(self) -> InputFile:
        """The first input; a :class:`TaskError` if the run has none."""
        if not self.inputs:
            raise TaskError("this pipeline needs an input file, and none was given")
        return self.inputs[0]

    def log(self, message: str) -> None:
        """Add a line to the run's log, shown live on the run page."""
        self._reporter.log(str(message), "log")

    @contextlib.contextmanager
    def stage(self, name: str) -> Iterator[None]:
        """Show ``name`` as what the step is doing while the block runs."""
        self._reporter.stage(name)
        try:
            yield
        finally:
            self._reporter.stage(None)

    def progress(self, done: int, total: int | None = None) -> None:
        """Report that ``done`` of ``total`` units of work are finished."""
        if done < 0 or (total is not None and total < 0):
            raise ValueError("progress counts cannot be negative")
        self._reporter.progress(done, total)

    @property
    def cancelled(self) -> bool:
        """Whether the run was cancelled (or the step ran out of time); stop soon if so."""
        return self._reporter.is_cancelled()

    def check_cancelled(self) -> None:
        """Raise :class:`~gristmill.errors.CancelledError` if the run was cancelled."""
        if self._reporter.is_cancelled():
            raise CancelledError()

    def output(
        self, path: str | Path, *, name: str | None = None, media_type: str | None = None
    ) -> OutputFile:
        """Register a file as an output of this step, offered for download.

        ``path`` is absolute or relative to :attr:`workdir`, and must lie inside it. Returns the
        registered :class:`OutputFile`; registering the same name twice replaces the first.
        """
        target = (self.workdir / path).resolve()
        if not target.is_relative_to(self.workdir.resolve()):
            raise TaskError(f"output {self._shown(path)!r} is outside the step's work directory")
        if not target.is_file():
            raise TaskError(f"output {self._shown(path)!r} does not exist or is not a file")
        out_name = name or target.relative_to(self.workdir.resolve()).as_posix()
        digest = hashlib.sha256()
        size = 0
        with target.open("rb") as stream:
            while chunk := stream.read(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        guessed = media_type or mimetypes.guess_type(out_name)[0] or "application/octet-stream"
        registered = OutputFile(out_name, target, size, digest.hexdigest(), guessed)
        self._outputs[out_name] = registered
        return registered

    def _shown(self, path: str | Path) -> str:
        # Messages reach end users: a path on the server is shown relative to the work
        # directory, or by its last part when it lies elsewhere, never in full.
        given = Path(path)
        if not given.is_absolute():
            return given.as_posix()
        for base in (self.workdir, self.workdir.resolve()):
            if given.is_relative_to(base):
                return given.relative_to(base).as_posix()
        return given.name

    def findings(self, step: str, kind: str | None = None) -> Iterator[tuple[int, Any]]:
        """The findings of the map step ``step`` (of ``kind`` only, if given) as
        ``(item number, finding)`` pairs in item order, streamed from the store a page at a
        time (never loaded whole). For a reduce step placed after the map step."""
        if self._maps is None:
            raise TaskError(f"findings of step `{step}` are read by a step run after it")
        return self._maps.findings(step, kind)

    def map_summary(self, step: str) -> dict[str, Any]:
        """What the map step ``step`` found, summed over its batches: ``items`` (total),
        ``items_done``, ``items_failed``, ``counts`` (findings by kind), ``examples`` (a few
        findings of each kind), ``batches``, ``failed_batches`` (each with its number, first
        item, error and failed items) and ``generation``."""
        if self._maps is None:
            raise TaskError(f"the summary of step `{step}` is read by a step run after it")
        return self._maps.summary(step)

    @property
    def outputs(self) -> tuple[OutputFile, ...]:
        """The output files registered so far."""
        return tuple(self._outputs.values())
