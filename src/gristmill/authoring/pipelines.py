"""Pipelines: an ordered list of steps, with what they accept and how they are run.

A :class:`Pipeline` is built once, when its module is imported, and checked then: a mistake in a
definition raises :class:`~gristmill.errors.DefinitionError` naming the pipeline and the step.
"""

from __future__ import annotations

import re
import sys
import types
from collections.abc import Callable, Iterable, Sequence
from datetime import timedelta
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gristmill.authoring.inputs import Inputs
from gristmill.authoring.tasks import Task
from gristmill.errors import DefinitionError

_PIPELINE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")

Validator = Callable[..., Any]
"""A function ``check(input) -> bool | str | None`` run on each input before a run is queued."""


class Access(StrEnum):
    """Who may submit runs to a pipeline."""

    ANYONE = "anyone"
    SIGNED_IN = "signed-in"
    STAFF = "staff"
    SUPERUSER = "superuser"
    """Superusers only: for steps that run code sent with the run (code execution)."""


PREVIOUS = "previous"
"""``Pipeline(..., ancestor=PREVIOUS)``: a run names the previous run of its source as its
ancestor, unless the user names one."""


class NoParams(BaseModel):
    """The parameter model of a pipeline that takes no parameters."""

    model_config = {"extra": "forbid"}


def _as_task(step: Any, position: int, pipeline: str) -> Task:
    if isinstance(step, Task):
        return step
    if isinstance(step, type) and issubclass(step, Task):
        try:
            return step()
        except TypeError as error:
            raise DefinitionError(
                f"step {position} ({step.__name__}) cannot be made without arguments: {error}; "
                "list an instance instead",
                pipeline=pipeline,
            ) from error
    if callable(step):
        label = getattr(step, "__name__", repr(step))
        raise DefinitionError(
            f"step {position} ({label}) is a plain callable; decorate it with @task or "
            "subclass Task",
            pipeline=pipeline,
        )
    raise DefinitionError(
        f"step {position} ({step!r}) is not a task: expected a Task subclass or instance, "
        "a @task function or a Command",
        pipeline=pipeline,
    )


def _collect_validators(
    validators: Iterable[Validator] | types.ModuleType,
) -> tuple[Validator, ...]:
    if isinstance(validators, types.ModuleType):
        # Like a plugin folder: every public function in the module is a validator.
        return tuple(
            value
            for name, value in sorted(vars(validators).items())
            if isinstance(value, types.FunctionType)
            and not name.startswith("_")
            and value.__module__ == validators.__name__
        )
    return tuple(validators)


def _defining_module_dir() -> Path | None:
    """The folder of the module that called ``Pipeline(...)``."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame = frame.f_back  # type: ignore[assignment]
    filename = frame.f_globals.get("__file__") if frame is not None else None
    return Path(filename).resolve().parent if filename else None


def _template_dirs(
    templates: str | Path | None, module_dir: Path | None, pipeline: str
) -> tuple[Path, ...]:
    dirs: list[Path] = []
    if templates is not None:
        folder = Path(templates)
        if not folder.is_absolute():
            if module_dir is None:
                raise DefinitionError(
                    f"templates={str(templates)!r} is relative, but the pipeline's module has "
                    "no file to be relative to; give an absolute path",
                    pipeline=pipeline,
                )
            folder = module_dir / folder
        if not folder.is_dir():
            raise DefinitionError(
                f"templates folder {str(templates)!r} does not exist (looked for {folder})",
                pipeline=pipeline,
            )
        dirs.append(folder)
    if module_dir is not None and (module_dir / "templates").is_dir():
        dirs.append(module_dir / "templates")
    return tuple(dict.fromkeys(dirs))


class Pipeline:
    """An ordered list of steps that end users can hand data to."""

    def __init__(
        self,
        name: str,
        steps: Sequence[Any],
        *,
        title: str | None = None,
        description: str = "",
        inputs: Inputs | None = None,
        params: type[BaseModel] | None = None,
        validators: Iterable[Validator] | types.ModuleType = (),
        queue: str = "default",
        priority: int = 0,
        retention: timedelta = timedelta(days=7),
        access: Access | str = Access.ANYONE,
        step_timeout: float = 3600.0,
        max_attempts: int = 3,
        webhooks: Sequence[str] = (),
        webhook_secret: str | None = None,
        ancestor: str | None = None,
        ancestors_from: Sequence[str] = (),
        templates: str | Path | None = None,
        page_template: str | None = None,
    ):
        if not isinstance(name, str) or not _PIPELINE_NAME.fullmatch(name):
            raise DefinitionError(
                f"pipeline name {name!r} must be 1-64 lower-case letters, digits, '_' or '-', "
                "starting with a letter or digit"
            )
        self.name = name
        self.title = title or name.replace("-", " ").replace("_", " ").capitalize()
        self.description = description
        self.inputs = inputs or Inputs()
        if params is None:
            params = NoParams
        if not (isinstance(params, type) and issubclass(params, BaseModel)):
            raise DefinitionError("params must be a pydantic BaseModel subclass", pipeline=name)
        self.params = params
        self.validators = _collect_validators(validators)
        self.queue = queue
        if isinstance(priority, bool) or not isinstance(priority, int) or abs(priority) > 1000:
            raise DefinitionError(
                f"priority {priority!r} must be a whole number from -1000 to 1000", pipeline=name
            )
        self.priority = priority
        self.retention = retention
        try:
            self.access = Access(access)
        except ValueError as error:
            raise DefinitionError(
                f"access {access!r} is not one of: anyone, signed-in, staff, superuser",
                pipeline=name,
            ) from error
        if step_timeout <= 0:
            raise DefinitionError("step_timeout must be positive", pipeline=name)
        self.step_timeout = step_timeout
        if max_attempts < 1:
            raise DefinitionError("max_attempts must be at least 1", pipeline=name)
        self.max_attempts = max_attempts
        if isinstance(webhooks, str) or any(
            not isinstance(url, str) or not url.startswith(("http://", "https://"))
            for url in webhooks
        ):
            raise DefinitionError(
                f"webhooks must be a list of http:// or https:// URLs, not {webhooks!r}",
                pipeline=name,
            )
        self.webhooks: tuple[str, ...] = tuple(webhooks)
        """URLs told (HTTP POST, signed) whenever a run of this pipeline ends."""
        self.webhook_secret = webhook_secret
        """The key its webhooks are signed with; ``None``: ``GRISTMILL_WEBHOOK_SECRET``."""
        if ancestor not in (None, PREVIOUS):
            raise DefinitionError(
                f"ancestor {ancestor!r} is not one of: None (only the one a user names), "
                f"{PREVIOUS!r} (the previous run of the same source)",
                pipeline=name,
            )
        self.ancestor = ancestor
        if isinstance(ancestors_from, str):
            ancestors_from = (ancestors_from,)
        self.ancestors_from: tuple[str, ...] = (name, *(p for p in ancestors_from if p != name))
        """Pipelines whose runs may be this pipeline's ancestors (itself first)."""
        self.template_dirs = _template_dirs(templates, _defining_module_dir(), name)
        """Where the results page looks for this pipeline's templates, first to last: the
        ``templates`` folder given (relative to the pipeline's module), then a folder named
        ``templates`` beside that module, if there is one."""
        if page_template is not None and (not isinstance(page_template, str) or not page_template):
            raise DefinitionError(
                "page_template must be a template name such as 'checker/results.html'",
                pipeline=name,
            )
        self.page_template = page_template
        if isinstance(steps, str | bytes) or not isinstance(steps, Sequence) or not steps:
            raise DefinitionError("a pipeline needs a non-empty list of steps", pipeline=name)
        self.steps: tuple[Task, ...] = tuple(
            _as_task(step, position, name) for position, step in enumerate(steps, 1)
        )
        self._check()
        self._by_name = {task.step_name: task for task in self.steps}

    def _check(self) -> None:
        seen: set[str] = set()
        known_params = set(self.params.model_fields)
        for task in self.steps:
            try:
                task.check_definition()
            except DefinitionError as error:
                raise DefinitionError(error.detail, pipeline=self.name, step=error.step) from error
            step = task.step_name
            if getattr(task, "superusers_only", False) and self.access != Access.SUPERUSER:
                raise DefinitionError(
                    "this step runs code sent with the run (code execution), so the pipeline "
                    "must be for superusers only: access='superuser'",
                    pipeline=self.name,
                    step=step,
                )
            if step in seen:
                raise DefinitionError(
                    f"two steps are named {step!r}; give one of them another name "
                    "(name=... on the task)",
                    pipeline=self.name,
                )
            for needed in task.needs or ():
                if needed not in seen:
                    if needed == step:
                        where = "this step itself"
                    elif any(t.step_name == needed for t in self.steps):
                        where = "a later step of this pipeline"
                    else:
                        where = "not a step of this pipeline"
                    named, what = f"needs {needed!r}", "results"
                    if needed in getattr(task, "file_steps", ()):
                        named, what = f"argv names {{outputs.{needed}}}, and {needed!r}", "files"
                    raise DefinitionError(
                        f"{named}, which is {where}; a step can only "
                        f"read the {what} of steps before it",
                        pipeline=self.name,
                        step=step,
                    )
            for param in task.uses or ():
                if param not in known_params:
                    known = ", ".join(sorted(known_params)) or "none"
                    raise DefinitionError(
                        f"uses parameter {param!r}, which the parameter model does not define "
                        f"(known: {known})",
                        pipeline=self.name,
                        step=step,
                    )
            seen.add(step)
        for validator in self.validators:
            if not callable(validator):
                raise DefinitionError(
                    f"validator {validator!r} is not callable", pipeline=self.name
                )

    def step(self, name: str) -> Task:
        """Return the step called ``name``; ``KeyError`` if there is none."""
        return self._by_name[name]

    @property
    def step_names(self) -> tuple[str, ...]:
        """The steps' names, in order."""
        return tuple(task.step_name for task in self.steps)

    def upstream_of(self, task: Task) -> tuple[str, ...]:
        """The names of the earlier steps whose results ``task`` reads."""
        if task.needs is not None:
            return tuple(task.needs)
        names = self.step_names
        return names[: names.index(task.step_name)]

    def params_used_by(self, task: Task) -> tuple[str, ...]:
        """The names of the parameters ``task`` reads."""
        if task.uses is not None:
            return tuple(task.uses)
        return tuple(self.params.model_fields)

    def describe(self) -> dict[str, Any]:
        """The pipeline as plain JSON data: what a client needs to submit a run."""
        return {
            "name": self.name,
            "title": self.title,
            "description": self.description,
            "steps": [{"name": t.step_name, "title": t.title or t.step_name} for t in self.steps],
            "inputs": self.inputs.describe(),
            "params_schema": self.params.model_json_schema(),
            "queue": self.queue,
            "retention_seconds": int(self.retention.total_seconds()),
            "access": str(self.access),
        }

    def __repr__(self) -> str:
        return f"<Pipeline {self.name!r}: {', '.join(self.step_names)}>"
