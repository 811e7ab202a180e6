"""Command steps: a command-line tool run as a pipeline step, from an argv template.

A :class:`Command` never goes through a shell. Its argv template names the run's values with
placeholders; the values a user controls (inputs and parameters) always fill a whole argument and
may not start with ``-``, so they can neither become options nor split into several arguments.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import selectors
import shlex
import shutil
import signal
import subprocess
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from enum import Enum
from pathlib import Path
from typing import Any

from gristmill.authoring import isolation
from gristmill.authoring.context import RunContext
from gristmill.authoring.fingerprints import code_digest
from gristmill.authoring.jsonload import loads
from gristmill.authoring.tasks import Task
from gristmill.errors import CancelledError, DefinitionError, StepTimeoutError, TaskError

_TOKEN = re.compile(r"\{\{|\}\}|\{([^{}]*)\}|[{}]")
_PARAM = re.compile(r"params\.([A-Za-z_][A-Za-z0-9_]*)")
_OUTPUTS = re.compile(r"outputs\.([A-Za-z_][A-Za-z0-9_-]{0,99})(?:\.(.+))?")
_KNOWN = (
    "{input}, {inputs}, {params.NAME}, {outputs.STEP}, {outputs.STEP.NAME} and {workdir} "
    "(write {{ and }} for literal braces)"
)
_USER_VALUES = ("input", "inputs", "param", "output")
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_PRODUCED_SHOWN = 10  # files named when an output pattern matches none
_TAIL_LINES, _ERROR_TAIL_LINES, _TAIL_CHARS = 50, 20, 8 * 1024
_LINE_BYTES, _JSON_LIMIT = 8 * 1024, 16 * 1024 * 1024
_POLL_SECONDS, _TERM_GRACE_SECONDS, _EXIT_GRACE_SECONDS = 0.1, 5.0, 1.0

# One piece of an argument: ("text", literal), ("workdir", ""), ("input", ""), ("inputs", ""),
# ("param", NAME) or ("output", "STEP" or "STEP.NAME").
_Piece = tuple[str, str]


class Command(Task):
    """A step that runs a command-line tool, given as an argv template (never a shell string).

    Placeholders: ``{input}`` (the first input's path), ``{inputs}`` (one argument per input),
    ``{params.NAME}`` (a parameter), ``{outputs.STEP}`` (the only output file of the earlier
    step ``STEP``), ``{outputs.STEP.NAME}`` (its output called ``NAME``) and ``{workdir}`` (the
    step's work directory). All but ``{workdir}`` must fill a whole argument; ``{workdir}`` may
    sit inside one. A step named in ``{outputs.…}`` is added to ``needs``, so it must come
    earlier in the pipeline, and its files' digests count in this step's fingerprint.
    ``{{`` and ``}}`` are literal braces. Mistakes raise :class:`DefinitionError` here, at import.

    The tool runs in the work directory with a scrubbed environment (``PATH``, a UTF-8 locale,
    ``HOME`` and ``TMPDIR`` inside the work directory, plus ``env``), in its own process group;
    whatever is left of that group when the tool exits, times out or is cancelled is killed.
    Exit codes in ``ok_codes`` succeed, those in ``warn_codes`` succeed with a warning, any other
    fails the step with the tail of stderr. Files matching ``outputs`` (globs relative to the
    work directory) are registered as outputs; each pattern must match at least one file.
    With ``network=False`` the tool runs in a network namespace of its own, without network
    access (see :mod:`gristmill.authoring.isolation`).
    """

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        outputs: Sequence[str] = (),
        timeout: float | None = None,
        ok_codes: Sequence[int] = (0,),
        warn_codes: Sequence[int] = (),
        env: Mapping[str, str] | None = None,
        stdout_json: bool = False,
        title: str | None = None,
        version: str | None = None,
        needs: Sequence[str] | None = (),
        applicable: Callable[[RunContext], bool] | None = None,
        description: str | None = None,
        packages: Sequence[str] = (),
        staff_only: Sequence[str] = ("argv",),
        network: bool = True,
    ):
        self.network = network
        self.name, self.title, self.version, self.needs = name, title, version, needs
        self.description, self.packages, self.staff_only = description, packages, staff_only
        self.timeout = timeout
        self._applicable = applicable
        self.argv: tuple[str, ...] = _checked_argv(argv, name)
        self._template = tuple(_parse_argument(arg, name) for arg in self.argv)
        if self._template[0] == () or self._template[0][0][0] != "text":
            raise DefinitionError(
                f"argv[0] must name the program literally, not {self.argv[0]!r}", step=name
            )
        self.program: str = self._template[0][0][1]
        self.file_steps: tuple[str, ...] = tuple(
            dict.fromkeys(
                value.split(".", 1)[0]
                for pieces in self._template
                for kind, value in pieces
                if kind == "output"
            )
        )
        if self.file_steps:
            self.needs = tuple(dict.fromkeys([*(needs or ()), *self.file_steps]))
        self.outputs: tuple[str, ...] = _checked_outputs(outputs, name)
        self.ok_codes: tuple[int, ...] = _checked_codes("ok_codes", ok_codes, name)
        self.warn_codes: tuple[int, ...] = _checked_codes("warn_codes", warn_codes, name)
        self.env: dict[str, str] = _checked_env(env, name)
        self.stdout_json = bool(stdout_json)
        self.uses = tuple(sorted(self.param_names()))
        self.check_definition()

    def param_names(self) -> set[str]:
        """The names of the parameters the argv template reads."""
        return {value for pieces in self._template for kind, value in pieces if kind == "param"}

    def refused_params(self, params: Any) -> dict[str, str]:
        """The parameters of ``params`` (a validated parameter model) that this command cannot
        pass as arguments, each with a message for the submitter: a value starting with ``-``
        (it would be read as an option), a list or object, or no value at all.

        Submission calls this, so that such a value is refused before the run is queued rather
        than failing the step later.
        """
        refused = {}
        for name in sorted(self.param_names()):
            try:
                _argument_of(getattr(params, name))
            except _NotAnArgument as refusal:
                refused[name] = refusal.field_message.format(program=f"command `{self.program}`")
        return refused

    @property
    def identity(self) -> str:
        """``command:`` and the program, e.g. ``command:wc``."""
        return f"command:{self.program}"

    def code_fingerprint(self) -> str:
        """A digest of everything that shapes the result: argv, outputs, exit codes, env, JSON."""
        config = {
            "argv": list(self.argv),
            "outputs": list(self.outputs),
            "ok_codes": sorted(self.ok_codes),
            "warn_codes": sorted(self.warn_codes),
            "env": self.env,
            "stdout_json": self.stdout_json,
        }
        return code_digest("command", json.dumps(config, sort_keys=True))

    def is_applicable(self, run: RunContext) -> bool:
        """The ``applicable`` predicate given to the constructor; ``True`` without one."""
        return self._applicable(run) if self._applicable else True

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        """Run the tool; return what ran and how it went, or raise why it failed.

        The result holds ``command`` (the program's name and the user's arguments: inputs by name,
        earlier steps' outputs as ``STEP/NAME``, parameter values), ``argv`` (the whole argv
        as run, with the server's paths made run-relative; staff only unless ``staff_only``
        says otherwise), ``exit_code``, ``stdout_tail``, ``stderr_tail`` (server paths
        rewritten, see :meth:`RunContext.curate`), ``outputs`` (registered names),
        ``warnings`` and, with ``stdout_json``, the parsed stdout as ``data``.

        Raises :class:`TaskError` when a value cannot be an argument, the program is missing, the
        exit code is not accepted or an output is missing; :class:`StepTimeoutError` past the
        timeout and :class:`CancelledError` on cancellation, after killing the process group.
        """
        workdir = run.workdir.absolute()
        argv, shown, users = self._render(run, workdir)
        env = self._environment(workdir)
        executable = shutil.which(self.program, path=env["PATH"])
        if executable is None:
            raise TaskError(f"command `{self.program}` was not found on this server")
        stdout, stderr, code = _execute(argv, executable, workdir, env, run, self)
        warnings = self._judge_exit(code, stderr)
        result: dict[str, Any] = {
            "command": [Path(self.program).name, *users],
            "argv": shown,
            "exit_code": code,
            "stdout_tail": stdout.tail_text(),
            "stderr_tail": stderr.tail_text(),
        }
        if self.stdout_json:
            printed = bytes(stdout.everything or b"")
            result["data"] = loads(printed, name=f"the output of command `{self.program}`")
        result["outputs"] = self._register_outputs(run, workdir)
        result["warnings"] = warnings
        return result

    def _render(self, run: RunContext, workdir: Path) -> tuple[list[str], list[str], list[str]]:
        # The argv to run, and the same as users see it: the result is shown on the results
        # page, so paths on the server appear relative to the work directory there.
        argv: list[str] = []
        shown: list[str] = []
        users: list[str] = []  # the user's arguments only
        for pieces in self._template:
            kind = pieces[0][0] if len(pieces) == 1 else "text"
            if kind in _USER_VALUES:
                values = _user_arguments(run, *pieces[0])
                argv.extend(path for path, _ in values)
                shown.extend(name for _, name in values)
                users.extend(name for _, name in values)
            else:
                argv.append("".join(str(workdir) if k == "workdir" else t for k, t in pieces))
                shown.append("".join("." if k == "workdir" else t for k, t in pieces))
        return argv, shown, users

    def _environment(self, workdir: Path) -> dict[str, str]:
        tmp = workdir / "tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH") or _DEFAULT_PATH,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "HOME": str(workdir),
            "TMPDIR": str(tmp),
        }
        return env | self.env

    def _judge_exit(self, code: int, stderr: _Stream) -> list[str]:
        if code in self.ok_codes:
            return []
        if code in self.warn_codes:
            return [f"`{self.program}` exited with code {code}"]
        if code < 0:
            message = f"command `{self.program}` was killed by signal {_signal_name(-code)}"
        else:
            message = f"command `{self.program}` failed with exit code {code}"
        tail = stderr.tail_text(_ERROR_TAIL_LINES).rstrip()
        raise TaskError(f"{message}\n{tail}" if tail else message)

    def _register_outputs(self, run: RunContext, workdir: Path) -> list[str]:
        names: dict[str, None] = {}
        for pattern in self.outputs:
            matches = sorted(path for path in workdir.glob(pattern) if path.is_file())
            if not matches:
                raise TaskError(
                    f"step {self.name!r}: command `{self.program}` produced no file matching "
                    f"{pattern!r}; {_produced_files(workdir)}"
                )
            for path in matches:
                names[run.output(path).name] = None
        return list(names)


def _produced_files(workdir: Path) -> str:
    # The files the tool did write, so an author sees at once whether the pattern or the tool is
    # wrong. ``tmp/`` is the tool's scratch directory (TMPDIR), not a result.
    found = sorted(
        path.relative_to(workdir).as_posix()
        for path in workdir.rglob("*")
        if path.is_file() and path.relative_to(workdir).parts[0] != "tmp"
    )
    if not found:
        return "it produced no files"
    shown = ", ".join(found[:_PRODUCED_SHOWN])
    more = len(found) - _PRODUCED_SHOWN
    return f"it produced: {shown}" + (f" and {more} more" if more > 0 else "")


def _checked_argv(argv: Sequence[str], step: str) -> tuple[str, ...]:
    if isinstance(argv, str):
        try:
            hint = f" (write it as a list: {shlex.split(argv)!r})"
        except ValueError:
            hint = ""
        raise DefinitionError(
            f"argv must be a list of arguments, not a shell string: {argv!r}{hint}", step=step
        )
    if not argv or not all(isinstance(arg, str) for arg in argv):
        raise DefinitionError("argv must be a non-empty list of strings", step=step)
    return tuple(argv)


def _parse_argument(arg: str, step: str) -> tuple[_Piece, ...]:
    pieces: list[_Piece] = []
    text, position = "", 0
    for match in _TOKEN.finditer(arg):
        text += arg[position : match.start()]
        position = match.end()
        token, name = match.group(0), match.group(1)
        if token in ("{{", "}}"):
            text += token[0]
            continue
        if name is None:
            raise DefinitionError(
                f"argument {arg!r} has an unmatched {token!r}; the known placeholders are {_KNOWN}",
                step=step,
            )
        if text:
            pieces.append(("text", text))
            text = ""
        pieces.append(_placeholder(name, arg, step))
    text += arg[position:]
    if text:
        pieces.append(("text", text))
    user = [piece for piece in pieces if piece[0] in _USER_VALUES]
    if user and len(pieces) > 1:
        kind, value = user[0]
        written = {"param": f"{{params.{value}}}", "output": f"{{outputs.{value}}}"}.get(
            kind, f"{{{kind}}}"
        )
        prefix = pieces[0][1] if len(pieces) == 2 and pieces[0][0] == "text" else ""
        option = prefix[:-1] if prefix.endswith("=") and len(prefix) > 1 else "--option"
        raise DefinitionError(
            f"argument {arg!r} puts {written} inside other text; user values fill whole "
            f"arguments, so give the option and the value as two arguments: "
            f"{[option, written]!r}",
            step=step,
        )
    return tuple(pieces)


def _placeholder(name: str, arg: str, step: str) -> _Piece:
    if name in ("input", "inputs", "workdir"):
        return (name, "")
    if match := _PARAM.fullmatch(name):
        return ("param", match.group(1))
    if match := _OUTPUTS.fullmatch(name):
        return ("output", name.removeprefix("outputs."))
    raise DefinitionError(
        f"argument {arg!r} has an unknown placeholder {{{name}}}; the known "
        f"placeholders are {_KNOWN}",
        step=step,
    )


def _checked_outputs(outputs: Sequence[str], step: str) -> tuple[str, ...]:
    if isinstance(outputs, str):
        raise DefinitionError(
            f"outputs must be a list of glob patterns, e.g. [{outputs!r}]", step=step
        )
    for pattern in outputs:
        if not pattern or pattern.startswith(("/", "\\")) or ".." in re.split(r"[/\\]", pattern):
            raise DefinitionError(
                f"output pattern {pattern!r} must be relative to the work directory, without '..'",
                step=step,
            )
    return tuple(outputs)


def _checked_codes(label: str, codes: object, step: str) -> tuple[int, ...]:
    if not isinstance(codes, Sequence) or not all(
        type(code) is int and 0 <= code <= 255 for code in codes
    ):
        raise DefinitionError(f"{label} must be a list of exit codes from 0 to 255", step=step)
    return tuple(codes)


def _checked_env(env: Mapping[str, str] | None, step: str) -> dict[str, str]:
    env = dict(env or {})
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in env.items()):
        raise DefinitionError("env must map variable names to strings", step=step)
    return env


def _user_arguments(run: RunContext, kind: str, name: str) -> list[tuple[str, str]]:
    """The arguments a user value gives: (as run, as shown to users) each."""
    if kind == "param":
        value = _param_argument(run.params, name)
        return [(value, value)]
    if kind == "output":
        return [_output_argument(run, name)]
    inputs = [run.input] if kind == "input" else list(run.inputs)
    paths = [str(item.path.absolute()) for item in inputs]
    for item, path in zip(inputs, paths, strict=True):
        if path.startswith("-"):
            raise TaskError(f"input {item.name!r} has a path starting with '-', read as an option")
    return [(path, item.name) for item, path in zip(inputs, paths, strict=True)]


def _output_argument(run: RunContext, reference: str) -> tuple[str, str]:
    step, _, wanted = reference.partition(".")
    files = run.upstream_files(step)
    placeholder = f"{{outputs.{reference}}}"
    if wanted:
        chosen = [f for f in files if f.name == wanted]
        if not chosen:
            have = ", ".join(f.name for f in files) or "none"
            raise TaskError(
                f"{placeholder}: step `{step}` has no output named {wanted!r} (it has: {have})"
            )
    else:
        chosen = list(files)
        if len(chosen) != 1:
            have = ", ".join(f.name for f in files) or "none"
            raise TaskError(
                f"{placeholder}: step `{step}` has {len(chosen)} output files ({have}); name "
                f"one as {{outputs.{step}.NAME}}"
            )
    path = chosen[0].path.absolute()
    # The file must be one this run stored: the path is inside the run's directory.
    if run.run_root is not None and not path.resolve().is_relative_to(run.run_root.resolve()):
        raise TaskError(f"{placeholder}: the output of step `{step}` is outside this run")
    return str(path), f"{step}/{chosen[0].name}"


def _param_argument(params: Any, name: str) -> str:
    value = getattr(params, name)
    try:
        return _argument_of(value)
    except _NotAnArgument as refusal:
        if refusal.reason == _DASH:
            raise TaskError(f"parameter `{name}` value {value!r} {_DASH}") from None
        raise TaskError(f"parameter `{name}` {refusal.reason}") from None


_DASH = "starts with '-' and would be read as an option"


class _NotAnArgument(ValueError):
    def __init__(self, reason: str, field_message: str):
        super().__init__(reason)
        self.reason = reason
        self.field_message = field_message


def _argument_of(value: Any) -> str:
    plain = value.value if isinstance(value, Enum) else value
    if isinstance(plain, bool):
        return "true" if plain else "false"
    if plain is None:
        raise _NotAnArgument(
            "has no value; a command argument needs one",
            "needs a value: {program} takes it as an argument",
        )
    if not isinstance(plain, str | int | float):
        kind = type(plain).__name__
        raise _NotAnArgument(
            f"is a {kind}; a command argument takes one value",
            f"must be one value, not a {kind}: {{program}} takes it as one argument",
        )
    text = str(plain)
    if text.startswith("-"):
        raise _NotAnArgument(_DASH, "must not start with '-': {program} would read it as an option")
    if "\0" in text:
        raise _NotAnArgument(
            "holds a NUL character, which no argument can hold", "must not hold a NUL character"
        )
    return text


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"number {number}"


class _Stream:
    """One pipe of the tool: each line goes to the run log as it comes; a bounded tail stays."""

    def __init__(self, name: str, run: RunContext, keep_all: bool):
        self.name, self._run, self._pending = name, run, b""
        self.tail: deque[str] = deque(maxlen=_TAIL_LINES)
        self.everything: bytearray | None = bytearray() if keep_all else None
        self.overflowed = False

    def feed(self, chunk: bytes) -> None:
        if self.everything is not None and not self.overflowed:
            self.everything += chunk
            self.overflowed = len(self.everything) > _JSON_LIMIT
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        for line in lines:
            for start in range(0, max(len(line), 1), _LINE_BYTES):
                self._emit(line[start : start + _LINE_BYTES])
        while len(self._pending) > _LINE_BYTES:
            self._emit(self._pending[:_LINE_BYTES])
            self._pending = self._pending[_LINE_BYTES:]

    def close(self) -> None:
        if self._pending:
            self._emit(self._pending)
            self._pending = b""

    def tail_text(self, lines: int = _TAIL_LINES) -> str:
        return "\n".join(list(self.tail)[-lines:])[-_TAIL_CHARS:]

    def _emit(self, raw: bytes) -> None:
        line = self._run.curate(raw.decode("utf-8", errors="replace").rstrip("\r"))
        self.tail.append(line)
        self._run.emit_curated(line, self.name)


def _execute(
    argv: list[str],
    executable: str,
    workdir: Path,
    env: dict[str, str],
    run: RunContext,
    command: Command,
) -> tuple[_Stream, _Stream, int]:
    preexec: Callable[[], None] | None = None
    if not command.network:
        refused = isolation.unavailable_message(command.step_name)
        if refused:
            raise TaskError(refused)
        preexec = isolation.enter_from_preexec
    try:
        process = subprocess.Popen(
            argv,
            executable=executable,
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            shell=False,
            preexec_fn=preexec,
        )
    except (OSError, subprocess.SubprocessError) as error:
        raise TaskError(f"command `{command.program}` could not be started: {error}") from None
    assert process.stdout is not None and process.stderr is not None
    stdout = _Stream("stdout", run, keep_all=command.stdout_json)
    stderr = _Stream("stderr", run, keep_all=False)
    try:
        _supervise(process, {process.stdout: stdout, process.stderr: stderr}, run, command)
    finally:
        # Nothing the tool started may outlive the step, whatever happened above.
        _signal_group(process, signal.SIGKILL)
        process.stdout.close()
        process.stderr.close()
        code = process.wait()
    stdout.close()
    stderr.close()
    return stdout, stderr, code


def _supervise(
    process: subprocess.Popen[bytes],
    streams: dict[Any, _Stream],
    run: RunContext,
    command: Command,
) -> None:
    """Pump the pipes until the tool has exited and they are closed.

    Raises the reason the tool was stopped early (timeout, cancellation, too much output) once the
    tool is gone.
    """
    selector = selectors.DefaultSelector()
    for pipe, stream in streams.items():
        selector.register(pipe, selectors.EVENT_READ, stream)
    started = time.monotonic()
    stopped: TaskError | None = None
    kill_at: float | None = None
    exited_at: float | None = None
    with selector:
        while True:
            _pump(selector, process)
            now = time.monotonic()
            if process.poll() is None:
                if stopped is None:
                    stopped = _stop_reason(run, streams, command, now - started)
                    if stopped is not None:
                        _signal_group(process, signal.SIGTERM)
                        kill_at = now + _TERM_GRACE_SECONDS
                elif kill_at is not None and now >= kill_at:
                    _signal_group(process, signal.SIGKILL)
                    kill_at = None
                continue
            exited_at = exited_at or now
            # Children that keep the pipes open after the tool exits are not waited for long.
            if not selector.get_map() or now - exited_at > _EXIT_GRACE_SECONDS:
                break
    if stopped is not None:
        raise stopped


def _pump(selector: selectors.BaseSelector, process: subprocess.Popen[bytes]) -> None:
    if not selector.get_map():
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(_POLL_SECONDS)
        return
    for key, _ in selector.select(_POLL_SECONDS):
        stream: _Stream = key.data
        chunk = os.read(key.fd, 1 << 16)
        if chunk:
            stream.feed(chunk)
        else:
            selector.unregister(key.fileobj)
            stream.close()


def _stop_reason(
    run: RunContext, streams: dict[Any, _Stream], command: Command, elapsed: float
) -> TaskError | None:
    program = command.program
    if any(stream.overflowed for stream in streams.values()):
        return TaskError(f"command `{program}` printed more than 16 MiB, too much for stdout_json")
    if run.cancelled:
        return CancelledError()
    if command.timeout is not None and elapsed > command.timeout:
        # The same words as the engine's own time limit, whichever notices first.
        return StepTimeoutError(
            f"step `{command.step_name}` ran past its time limit of {command.timeout:g} s"
        )
    return None


def _signal_group(process: subprocess.Popen[bytes], signum: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)
