"""Steps without network access (``network=False``): a containment aid, not a sandbox.

On Linux a step can be cut off the network by running it in a network namespace of its own
(``unshare(2)`` with ``CLONE_NEWNET``), which holds nothing but a loopback device that is down:
no connection can be opened, to the internet or to a local address, and no name resolved
through DNS. The worker can do that when it runs as root, or, as another user, where the kernel
allows unprivileged user namespaces (a user namespace is made first). Which of the two works is
found out once per process (:func:`isolation_mode`) and kept.

- A :class:`~gristmill.authoring.commands.Command` step runs its tool in the namespace: the
  child process enters it before ``exec`` (:func:`enter_from_preexec`).
- A Python step's :meth:`~gristmill.authoring.tasks.Task.process` runs in a forked child process
  that enters the namespace (:func:`call_without_network`); its log lines, stage, progress,
  output files and result (or error) come back to the worker through a pipe. A cancel or time
  limit reaches it as :attr:`RunContext.cancelled` first; if it has not ended a moment later
  (:data:`STOP_GRACE`) it is killed.

Where no namespace can be made, a step with ``network=False`` fails with a message naming the
option and why; it is never run with network instead. Nothing else is contained: the step can
still read and write whatever files the worker's user can, use the CPU and memory, and start
processes.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import json
import mmap
import os
import select
import signal
import struct
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from gristmill.authoring.context import OutputFile, RunContext
from gristmill.errors import CancelledError, StepTimeoutError, TaskError

CLONE_NEWNET = 0x40000000
CLONE_NEWUSER = 0x10000000
_PR_SET_PDEATHSIG = 1

STOP_GRACE = 0.2
"""Seconds a Python step without network has, once cancelled or out of time, to return before
its process is killed (well inside the worker's own ``GRISTMILL_KILL_GRACE``)."""
_POLL = 0.1
_HEADER = struct.Struct("!I")


class StepProcessError(Exception):
    """A Python step without network raised an unexpected error in its own process; the
    message holds that process's traceback (for the operator's log, never shown to users)."""


@functools.cache
def isolation_mode() -> tuple[int, str]:
    """How this process can make a network namespace: ``(flags, "")`` with the ``unshare``
    flags that work (``CLONE_NEWNET``, or with ``CLONE_NEWUSER`` for a user that is not
    root), or ``(0, reason)`` when it cannot. Tried once, in a throw-away child process."""
    if not sys.platform.startswith("linux"):
        return 0, f"network namespaces are a Linux feature, and this server runs on {sys.platform}"
    read, write = os.pipe()
    with _quiet_fork():
        pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        answer = b""
        try:
            os.close(read)
            answer = _try_namespaces().encode()
        finally:
            os.write(write, answer)
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        answer_text = pipe.read().decode()
    os.waitpid(pid, 0)
    kind, _, detail = answer_text.partition(":")
    if kind == "net":
        return CLONE_NEWNET, ""
    if kind == "user":
        return CLONE_NEWUSER | CLONE_NEWNET, ""
    return 0, detail or "the check of network namespaces failed"


def _try_namespaces() -> str:
    try:
        _unshare(CLONE_NEWNET)
        return "net:"
    except OSError as error:
        first = error
    try:
        enter_namespace(CLONE_NEWUSER | CLONE_NEWNET)
        return "user:"
    except OSError as error:
        return (
            f"making a network namespace was refused ({os.strerror(first.errno or 0)}; "
            f"through a user namespace: {os.strerror(error.errno or 0)}): the worker is not "
            "root and unprivileged user namespaces are not allowed here"
        )


def unavailable_message(step: str) -> str | None:
    """Why step ``step`` (with ``network=False``) cannot run here, or ``None`` if it can."""
    flags, reason = isolation_mode()
    if flags:
        return None
    return (
        f"step `{step}` is set to run without network access (network=False), but this server "
        f"cannot cut a step off the network: {reason}. Run the workers as root or where user "
        "namespaces are allowed, or set network=True on the step"
    )


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def _unshare(flags: int) -> None:
    if _libc().unshare(flags) != 0:
        number = ctypes.get_errno()
        raise OSError(number, os.strerror(number))


def enter_namespace(flags: int) -> None:
    """Move this (single-threaded) process into a new network namespace, through a new user
    namespace when ``flags`` has ``CLONE_NEWUSER`` (the user keeps its own ids inside)."""
    uid, gid = os.getuid(), os.getgid()
    _unshare(flags)
    if flags & CLONE_NEWUSER:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")


def enter_from_preexec() -> None:
    """For ``subprocess.Popen(preexec_fn=...)``: the child enters a network namespace before
    it runs the program (:func:`isolation_mode` must have said it can)."""
    enter_namespace(isolation_mode()[0])


@contextlib.contextmanager
def _quiet_fork() -> Any:
    # Python 3.12+ warns about fork() in a process with threads; the child here runs only
    # this module's code (and the step's), never the other threads' locks.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


class _PipeReporter:
    """The child's reporter: what the step reports goes to the worker through the pipe."""

    def __init__(self, fd: int, flag: mmap.mmap):
        self.fd = fd
        self.flag = flag

    def send(self, message: tuple[Any, ...]) -> None:
        # JSON, not pickle: what the child sends is data the worker reads, never code it runs.
        data = json.dumps(message).encode()
        view = memoryview(_HEADER.pack(len(data)) + data)
        while view:
            view = view[os.write(self.fd, view) :]

    def log(self, text: str, stream: str) -> None:
        self.send(("log", text, stream))

    def stage(self, name: str | None) -> None:
        self.send(("stage", name))

    def progress(self, done: int, total: int | None) -> None:
        self.send(("progress", done, total))

    def is_cancelled(self) -> bool:
        return self.flag[0] == 1


def call_without_network(
    run: RunContext, call: Callable[[], Any], encode: Callable[[Any], str]
) -> Any:
    """Run ``call()`` (a step's work on ``run``) in a forked child process without network
    access, and return its result, encoded in the child with ``encode`` (to JSON text) and
    decoded here. The child's log lines, stage, progress and registered outputs reach ``run``
    as they would from the step itself; its :class:`TaskError` and :class:`CancelledError`
    are raised here as they were raised there, any other error as :class:`StepProcessError`.
    Raises :class:`TaskError` if this server cannot make a network namespace."""
    refused = unavailable_message(run.step)
    if refused:
        raise TaskError(refused)
    flags = isolation_mode()[0]
    reporter = run._reporter
    flag = mmap.mmap(-1, 1)
    read, write = os.pipe()
    _flush_standard_streams()  # or the child would print what the worker buffered, again
    with _quiet_fork():
        pid = os.fork()
    if pid == 0:  # pragma: no cover - measured through the pipe by the worker's side
        os.close(read)
        _child(run, call, encode, flags, _PipeReporter(write, flag))
    os.close(write)
    try:
        return _supervise(run, reporter, pid, read, flag)
    finally:
        os.close(read)
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        flag.close()


def _child(
    run: RunContext,
    call: Callable[[], Any],
    encode: Callable[[Any], str],
    flags: int,
    reporter: _PipeReporter,
) -> None:  # pragma: no cover - runs in the forked child
    code = 0
    try:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, signal.SIG_DFL)
        with contextlib.suppress(Exception):  # die with the worker
            _libc().prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        enter_namespace(flags)
        run._reporter = reporter
        try:
            try:
                text = encode(call())
            finally:
                run.flush_repeats()
        except StepTimeoutError as error:
            reporter.send(("timeout", error.message))
        except CancelledError as error:
            reporter.send(("cancelled", error.message))
        except TaskError as error:
            reporter.send(("task-error", error.message))
        except BaseException as error:
            reporter.send(("error", f"{type(error).__name__}: {error}", traceback.format_exc()))
        else:
            outputs = [(o.name, str(o.path), o.size, o.sha256, o.media_type) for o in run.outputs]
            reporter.send(("result", text, outputs))
    except BaseException:
        code = 70
    finally:
        _flush_standard_streams()
        os._exit(code)


def _flush_standard_streams() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()


def _supervise(run: RunContext, reporter: Any, pid: int, read: int, flag: mmap.mmap) -> Any:
    buffer = bytearray()
    outcome: Sequence[Any] | None = None
    kill_at: float | None = None
    killed = False
    while True:
        ready, _, _ = select.select([read], [], [], _POLL)
        if ready:
            chunk = os.read(read, 1 << 16)
            if not chunk:
                break
            buffer += chunk
            while len(buffer) >= _HEADER.size:
                (size,) = _HEADER.unpack_from(buffer)
                if len(buffer) < _HEADER.size + size:
                    break
                message = json.loads(buffer[_HEADER.size : _HEADER.size + size])
                del buffer[: _HEADER.size + size]
                outcome = _dispatch(reporter, message) or outcome
        if reporter.is_cancelled() and not killed:
            now = time.monotonic()
            if kill_at is None:
                flag[0] = 1
                kill_at = now + STOP_GRACE
            elif now >= kill_at:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                killed = True
    _, status = os.waitpid(pid, 0)
    return _outcome(run, outcome, status, killed or kill_at is not None)


def _dispatch(reporter: Any, message: Sequence[Any]) -> Sequence[Any] | None:
    kind = message[0]
    if kind == "log":
        reporter.log(message[1], message[2])
    elif kind == "stage":
        reporter.stage(message[1])
    elif kind == "progress":
        reporter.progress(message[1], message[2])
    else:
        return message
    return None


def _outcome(run: RunContext, outcome: Sequence[Any] | None, status: int, stopped: bool) -> Any:
    if outcome is None:
        if stopped:
            raise CancelledError()
        if os.WIFSIGNALED(status):
            how = f"was killed by signal {signal.Signals(os.WTERMSIG(status)).name}"
        else:
            how = f"exited with code {os.waitstatus_to_exitcode(status)}"
        raise TaskError(f"step `{run.step}` stopped without a result: its process {how}")
    kind = outcome[0]
    if kind == "result":
        workdir = run.workdir.resolve()
        for name, path, size, sha256, media_type in outcome[2]:
            if not Path(path).resolve().is_relative_to(workdir):
                raise TaskError(f"output {name!r} is outside the step's work directory")
            run._outputs[name] = OutputFile(name, Path(path), size, sha256, media_type)
        return json.loads(outcome[1])
    if kind == "timeout":
        raise StepTimeoutError(outcome[1])
    if kind == "cancelled":
        raise CancelledError(outcome[1])
    if kind == "task-error":
        raise TaskError(outcome[1])
    raise StepProcessError(f"{outcome[1]} (in the step's own process)\n{outcome[2]}")


__all__ = [
    "CLONE_NEWNET",
    "StepProcessError",
    "call_without_network",
    "enter_from_preexec",
    "isolation_mode",
    "unavailable_message",
]
