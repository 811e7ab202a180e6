"""Tasks: the code of one pipeline step, as a class or as a decorated function.

A class task subclasses :class:`Task` and overrides :meth:`Task.process` (and, when it helps,
:meth:`~Task.is_applicable`, :meth:`~Task.is_needed` and :meth:`~Task.context`). A function task
is a plain function decorated with :func:`task`; it receives the run context and, if it takes a
second argument, the upstream results.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import inspect
import logging
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, ParamSpec, TypeVar, overload

from gristmill.authoring.context import RunContext
from gristmill.authoring.fingerprints import Fingerprint, code_digest, normalised_source
from gristmill.errors import DefinitionError

P = ParamSpec("P")
R = TypeVar("R")

_STEP_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]{0,99}$")
_LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


@functools.cache
def installed_version(distribution: str) -> str | None:
    """The installed version of ``distribution`` (as this process loaded it), or ``None``."""
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


@dataclass(frozen=True)
class PreviousResult:
    """The stored result of a step from an earlier attempt or run of the same inputs."""

    state: str
    """The stored :class:`~gristmill.states.StepState` value (``succeeded`` or ``skipped``)."""
    result: Any
    """The JSON result the step returned."""
    fingerprint: Fingerprint
    """What that result was computed from."""
    stale_reasons: Sequence[str] = field(default_factory=tuple)
    """Why the result no longer matches the current code, parameters and inputs (empty if it
    still does)."""

    @property
    def stale(self) -> bool:
        """Whether something that counts has changed since the result was computed."""
        return bool(self.stale_reasons)


class Task:
    """Base class of every step.

    Subclasses set the class attributes they need and override :meth:`process`.
    """

    name: str | None = None
    """The step's name in the pipeline; defaults to the class (or function) name."""
    title: str | None = None
    """A human title for pages; defaults to the name."""
    version: str | None = None
    """An explicit version: changing it makes earlier results stale."""
    needs: Sequence[str] | None = None
    """Names of the earlier steps whose results this task reads; ``None`` means all of them."""
    uses: Sequence[str] | None = None
    """Names of the parameters this task reads; ``None`` means all of them."""
    timeout: float | None = None
    """Seconds the step may run; ``None`` uses the pipeline's default."""
    template: str | None = None
    """Template name used to render :meth:`context` on the results page."""
    description: str | None = None
    """A sentence for people about what the step does (presentation: not in the fingerprint)."""
    packages: Sequence[str] = ()
    """Distributions (``pip`` names) whose installed versions count in the fingerprint: an
    upgrade makes results stale, saying e.g. ``jsonschema 4.25 → 4.26``."""
    staff_only: Sequence[str] = ()
    """Keys of a dict result shown only to staff, on the results page and in the API."""
    log_level: str | None = None
    """Python ``logging`` records (from any library) at or above this level, and
    ``warnings.warn`` calls, made while the step runs go into the run log; ``None`` takes
    none."""
    network: bool = True
    """``False`` runs :meth:`process` without network access, in a network namespace of its
    own (see :mod:`gristmill.authoring.isolation`): a containment aid, not a sandbox."""

    _code_cache: dict[object, str] = {}

    @property
    def step_name(self) -> str:
        """The name this task has in its pipeline."""
        return self.name or type(self).__name__

    @property
    def identity(self) -> str:
        """``module.QualName`` of the code that runs."""
        cls = type(self)
        return f"{cls.__module__}.{cls.__qualname__}"

    def code_fingerprint(self) -> str:
        """A digest of this task's code, blind to comments, docstrings and formatting."""
        cls = type(self)
        digest = Task._code_cache.get(cls)
        if digest is None:
            digest = code_digest(normalised_source(cls))
            Task._code_cache[cls] = digest
        return digest

    def package_versions(self) -> dict[str, str]:
        """The installed version of each of :attr:`packages`; a :class:`DefinitionError`
        naming any that is not installed."""
        versions = {}
        for package in self.packages:
            version = installed_version(package)
            if version is None:
                raise DefinitionError(
                    f"packages names {package!r}, which is not installed on this server "
                    f"(pip install {package})",
                    step=self.step_name,
                )
            versions[package] = version
        return versions

    def is_applicable(self, run: RunContext) -> bool:
        """Return whether this step could ever do anything for this run (cheap).

        A step that is not applicable is skipped. The default is ``True``.
        """
        return True

    def is_needed(self, run: RunContext, previous: PreviousResult | None) -> bool:
        """Return whether there is work outstanding (cheap).

        ``previous`` is the stored result, if any. The default recomputes when there is none or
        when it is stale.
        """
        return previous is None or previous.state != "succeeded" or previous.stale

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        """Do the step's work and return a JSON-serialisable result.

        ``upstream`` maps earlier step names to their results. Raise
        :class:`~gristmill.errors.TaskError` with a message for the user when the data is at
        fault.
        """
        raise NotImplementedError(f"{self.identity} must implement process()")

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        """Return what the results page shows for this step, built from the stored result only.

        The default shows a dict result as it is, and anything else under ``"result"``.
        """
        if isinstance(result, dict):
            return result
        return {"result": result}

    def check_definition(self) -> None:
        """Raise :class:`~gristmill.errors.DefinitionError` if this task is defined wrongly."""
        if not _STEP_NAME.fullmatch(self.step_name):
            raise DefinitionError(
                "a step name must start with a letter or '_' and hold only letters, digits, "
                "'_' and '-' (at most 100 characters)",
                step=self.step_name,
            )
        if self.timeout is not None and not self.timeout > 0:
            raise DefinitionError(
                "timeout must be a positive number of seconds", step=self.step_name
            )
        for attr in ("needs", "uses"):
            value = getattr(self, attr)
            if value is not None and (
                isinstance(value, str) or not all(isinstance(v, str) for v in value)
            ):
                raise DefinitionError(f"{attr} must be a list of names", step=self.step_name)
        for attr in ("packages", "staff_only"):
            value = getattr(self, attr)
            if isinstance(value, str) or not all(isinstance(v, str) for v in value):
                raise DefinitionError(
                    f"{attr} must be a list of names, e.g. ({value!r},)", step=self.step_name
                )
        if not isinstance(self.network, bool):
            raise DefinitionError(
                f"network must be True or False, not {self.network!r}", step=self.step_name
            )
        if self.log_level is not None and self.log_level not in _LOG_LEVELS:
            raise DefinitionError(
                f"log_level must be one of {', '.join(_LOG_LEVELS)} (or None), "
                f"not {self.log_level!r}",
                step=self.step_name,
            )
        self.package_versions()

    @property
    def log_threshold(self) -> int | None:
        """:attr:`log_level` as a :mod:`logging` level number."""
        return None if self.log_level is None else logging.getLevelNamesMapping()[self.log_level]

    def __repr__(self) -> str:
        return f"<{type(self).__name__} step {self.step_name!r}>"


class FunctionTask(Task, Generic[P, R]):
    """A step made from a plain function with :func:`task`; still callable as the function."""

    def __init__(
        self,
        function: Callable[P, R],
        *,
        name: str | None = None,
        title: str | None = None,
        version: str | None = None,
        needs: Sequence[str] | None = None,
        uses: Sequence[str] | None = None,
        timeout: float | None = None,
        applicable: Callable[[RunContext], bool] | None = None,
        template: str | None = None,
        description: str | None = None,
        packages: Sequence[str] = (),
        staff_only: Sequence[str] = (),
        log_level: str | None = None,
        network: bool = True,
    ):
        if not callable(function) or isinstance(function, Task):
            raise DefinitionError(f"@task needs a function, not {function!r}")
        self.function = function
        self.name = name or function.__name__
        self.title = title
        self.version = version
        self.needs = needs
        self.uses = uses
        self.timeout = timeout
        self.template = template
        self.description = description
        self.packages = packages
        self.staff_only = staff_only
        self.log_level = log_level
        self.network = network
        self._applicable = applicable
        positional = [
            p
            for p in inspect.signature(function).parameters.values()
            if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        if len(positional) not in (1, 2):
            raise DefinitionError(
                "a task function takes the run context, and optionally the upstream results: "
                f"def {function.__name__}(run) or def {function.__name__}(run, upstream)",
                step=self.name,
            )
        self._wants_upstream = len(positional) == 2
        for attribute in ("__module__", "__name__", "__qualname__", "__doc__"):
            with contextlib.suppress(AttributeError):
                setattr(self, attribute, getattr(function, attribute))
        self.__wrapped__ = function

    @property
    def identity(self) -> str:
        return f"{self.function.__module__}.{self.function.__qualname__}"

    def code_fingerprint(self) -> str:
        digest = Task._code_cache.get(self.function)
        if digest is None:
            digest = code_digest(normalised_source(self.function))
            Task._code_cache[self.function] = digest
        return digest

    def is_applicable(self, run: RunContext) -> bool:
        return self._applicable(run) if self._applicable else True

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> Any:
        call: Callable[..., Any] = self.function
        return call(run, upstream) if self._wants_upstream else call(run)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.function(*args, **kwargs)


@overload
def task(function: Callable[P, R], /) -> FunctionTask[P, R]: ...


@overload
def task(
    *,
    name: str | None = None,
    title: str | None = None,
    version: str | None = None,
    needs: Sequence[str] | None = None,
    uses: Sequence[str] | None = None,
    timeout: float | None = None,
    applicable: Callable[[RunContext], bool] | None = None,
    template: str | None = None,
    description: str | None = None,
    packages: Sequence[str] = (),
    staff_only: Sequence[str] = (),
    log_level: str | None = None,
    network: bool = True,
) -> Callable[[Callable[P, R]], FunctionTask[P, R]]: ...


def task(
    function: Callable[P, R] | None = None,
    /,
    **options: Any,
) -> FunctionTask[P, R] | Callable[[Callable[P, R]], FunctionTask[P, R]]:
    """Make a pipeline step from a function ``f(run)`` or ``f(run, upstream)``.

    Use bare (``@task``) or with options (``@task(version="2", timeout=60)``); the options are the
    :class:`Task` attributes, plus ``applicable``, a predicate on the run context.
    """
    if function is not None:
        return FunctionTask(function, **options)

    def decorate(fn: Callable[P, R]) -> FunctionTask[P, R]:
        return FunctionTask(fn, **options)

    return decorate
