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
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Protocol

from gristmill.authoring.logcontrol import RepeatCap
from gristmill.errors import CancelledError, TaskError


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
    """How the data arrived: ``file``, ``json``, ``text``, ``url``, ``datafile``, ``run`` or
    ``items``."""
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

    def open(self, mode: str = "rb") -> IO[Any]:
        """Open the file for reading (``"rb"`` or ``"r"``); a later step may not change it."""
        if "w" in mode or "a" in mode or "+" in mode or "x" in mode:
            raise ValueError("the output files of earlier steps are read-only")
        if "b" in mode:
            return self.path.open(mode)
        return self.path.open(mode, encoding="utf-8")


@dataclass(frozen=True, slots=True)
class AncestorRecord:
    """What a step may read of its run's ancestor, loaded from the store on first use."""

    pipeline: str
    results: Mapping[str, Any]
    """Each stored step's result, by step name."""
    inputs: tuple[InputFile, ...]
    outputs: Mapping[str, tuple[OutputFile, ...]]
    """Each step's output files, by step name."""


class Ancestor:
    """The earlier run this run names as its ancestor (``run.ancestor``), to compare with.

    Only :attr:`id` is known at once; the rest is read from the store the first time it is
    asked for. If the ancestor has expired (or was deleted) since this run was submitted,
    reading it raises a :class:`~gristmill.errors.TaskError` that says so, which fails the step
    with that message unless the task catches it.
    """

    def __init__(self, run_id: str, load: Callable[[], AncestorRecord]):
        self.id = run_id
        self._load = load
        self._record: AncestorRecord | None = None

    def __repr__(self) -> str:
        return f"<Ancestor {self.id}>"

    @property
    def record(self) -> AncestorRecord:
        if self._record is None:
            self._record = self._load()
        return self._record

    @property
    def pipeline(self) -> str:
        """The ancestor's pipeline."""
        return self.record.pipeline

    @property
    def results(self) -> Mapping[str, Any]:
        """The ancestor's stored step results, by step name."""
        return self.record.results

    def result(self, step: str) -> Any:
        """The ancestor's stored result of ``step``; a :class:`TaskError` if it has none."""
        results = self.record.results
        if step not in results:
            stored = ", ".join(results) or "none"
            raise TaskError(
                f"the ancestor run {self.id} has no result of step {step!r} (it has: {stored})"
            )
        return results[step]

    @property
    def inputs(self) -> tuple[InputFile, ...]:
        """The ancestor's input files (read-only)."""
        return self.record.inputs

    def outputs(self, step: str | None = None) -> tuple[OutputFile, ...]:
        """The ancestor's output files (read-only), of ``step`` only if given."""
        outputs = self.record.outputs
        if step is not None:
            return outputs.get(step, ())
        return tuple(output for files in outputs.values() for output in files)


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
        ancestor: Ancestor | None = None,
        reporter: Reporter | None = None,
        files: Mapping[str, tuple[OutputFile, ...]] | None = None,
        run_root: Path | None = None,
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
        """The run's ancestor (:class:`Ancestor`), or None if it names none."""
        self._reporter: Reporter = reporter or _SilentReporter()
        self._outputs: dict[str, OutputFile] = {}
        self._files: Mapping[str, tuple[OutputFile, ...]] = files or {}
        self.run_root = run_root
        """The run's directory on the server (inputs, work directories), if known."""
        self._curation: tuple[re.Pattern[str], dict[str, str]] | None = None
        self._repeats = RepeatCap()

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

    def upstream_files(self, step: str) -> tuple[OutputFile, ...]:
        """The output files that the earlier step ``step`` registered in this run (path, size,
        digest and media type of each), for reading only.

        ``step`` must be one of the steps this task reads (its ``needs``); a
        :class:`TaskError` otherwise. A step that registered no outputs, or was skipped, gives
        an empty tuple.
        """
        if step not in self.upstream:
            readable = ", ".join(f"`{name}`" for name in self.upstream) or "none"
            raise TaskError(
                f"step `{self.step}` cannot read the files of `{step}`: it is not an earlier "
                f"step this step reads (it reads: {readable})"
            )
        return self._files.get(step, ())

    def log(self, message: str) -> None:
        """Add a line to the run's log, shown live on the run page.

        Paths on the server are rewritten for the people who read it (see :meth:`curate`).
        """
        self.emit(str(message), "log")

    def emit(self, text: str, stream: str, *, key: str | None = None) -> None:
        """Send ``text`` to the run log on ``stream`` (``log``, ``stdout``, ``stderr``,
        ``logging``, ``warning``), curated (:meth:`curate`); a line repeated more than a few
        times is held back and counted (``key`` says which lines are the same; default: the
        text), see :mod:`gristmill.authoring.logcontrol`."""
        self.emit_curated(self.curate(text), stream, key=key)

    def emit_curated(self, text: str, stream: str, *, key: str | None = None) -> None:
        """:meth:`emit` for text already curated."""
        for line in text.splitlines() or [""]:
            if self._repeats.admit(stream, line, key):
                self._reporter.log(line, stream)

    def flush_repeats(self) -> None:
        """Say how many lines were held back as repeats (the engine calls this at the step's
        end)."""
        for stream, line in self._repeats.summary():
            self._reporter.log(line, stream)

    def curate(self, text: str) -> str:
        """``text`` with the server's paths of this run rewritten for end users: an input's
        path becomes its name, a step's work directory ``STEP/``, the run's directory
        ``<run>/`` and the data directory ``<data>/``."""
        if self.run_root is None or "/" not in text:
            return text
        if self._curation is None:
            self._curation = self._curation_rules(self.run_root)
        pattern, replacements = self._curation
        return pattern.sub(lambda match: replacements[match.group(0)], text)

    def _curation_rules(self, run_root: Path) -> tuple[re.Pattern[str], dict[str, str]]:
        replacements: dict[str, str] = {}
        for root in dict.fromkeys((run_root.absolute(), run_root.resolve())):
            for item in self.inputs:
                for path in (item.path.absolute(), item.path.resolve()):
                    replacements[str(path)] = item.name
            for files in self._files.values():
                for output in files:
                    step_dir = output.path.absolute().parent
                    replacements[str(step_dir) + "/"] = step_dir.name + "/"
            replacements[f"{root}/"] = "<run>/"
            replacements[str(root)] = "<run>"
            data = root.parent.parent  # DATA/runs/RUN
            replacements[f"{data}/"] = "<data>/"
        # The longest first, so that a path is rewritten by its most precise rule.
        keys = sorted(replacements, key=len, reverse=True)
        work = re.compile(
            "|".join(
                rf"{re.escape(str(root))}/a\d+/[A-Za-z0-9_-]+/"
                for root in dict.fromkeys((run_root.absolute(), run_root.resolve()))
            )
        )
        pattern = re.compile(f"{work.pattern}|" + "|".join(re.escape(k) for k in keys))

        class _Rules(dict[str, str]):
            def __missing__(self, key: str) -> str:
                # A work directory: ``…/a2/convert/`` → ``convert/``.
                return key.rstrip("/").rsplit("/", 1)[-1] + "/"

        return pattern, _Rules(replacements)

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
