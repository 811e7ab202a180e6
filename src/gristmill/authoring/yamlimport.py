"""Pipelines from a YAML file: the :class:`~gristmill.Pipeline` each document describes.

Each document is checked against the shipped JSON Schema (:mod:`gristmill.authoring.yamlschema`),
then built with the same classes a Python definition uses (:class:`~gristmill.Command`, the
library's tasks, :class:`~gristmill.Pipeline`), so that a YAML pipeline fingerprints and behaves
exactly like its Python twin. Every mistake, the schema's or the definition's, is reported with
its line; a step marked ``python:`` (Python code, which a file cannot hold) is refused naming it.
"""

from __future__ import annotations

import importlib
import inspect
from datetime import timedelta
from pathlib import Path
from typing import Any

from gristmill.authoring.commands import Command
from gristmill.authoring.inputs import Inputs
from gristmill.authoring.paramschema import params_model
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.tasks import Task
from gristmill.authoring.yamlschema import check
from gristmill.authoring.yamlsource import Document, FieldPath, read_documents
from gristmill.errors import DefinitionError, PipelineFileError

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_COMMAND_KEYS = {"name", "command"}
_PIPELINE_KEYS: tuple[str, ...] = ("title", "description", "queue", "priority", "access")
_PIPELINE_KEYS += ("step_timeout", "max_attempts", "webhooks", "ancestor", "ancestors_from")
_PIPELINE_KEYS += ("page_template",)


class _Refused(Exception):
    def __init__(self, path: FieldPath, message: str, *, key: bool = False):
        super().__init__(message)
        self.path, self.message, self.key = path, message, key


LIBRARY = "gristmill.library"
"""Where the tasks a YAML pipeline names are found: the public names of this module."""


def library_tasks() -> dict[str, type[Task]]:
    """The tasks a YAML pipeline may name, by public name (the ``__all__`` of :data:`LIBRARY`).

    The library builds on authoring, so it is found by its dotted path when a file is read,
    as the registry finds any pipeline module, not imported by this module.
    """
    library = importlib.import_module(LIBRARY)
    return {name: getattr(library, name) for name in library.__all__}


def duration(value: int | str) -> timedelta:
    """A retention from the file: seconds, or a number and a unit (``90m``, ``12h``, ``7d``)."""
    if isinstance(value, int):
        return timedelta(seconds=value)
    return timedelta(seconds=int(value[:-1]) * _UNITS[value[-1]])


def load_file(path: Path) -> list[Pipeline]:
    """The pipelines of the YAML file at ``path``; :class:`PipelineFileError` listing every
    mistake (file, line and field each) if the file does not describe valid pipelines."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PipelineFileError([f"{path}: pipeline file does not exist"]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise PipelineFileError([f"{path}: cannot be read: {error}"]) from None
    return load_text(text, str(path), base=path.absolute().parent)


def load_text(text: str, label: str, *, base: Path | None = None) -> list[Pipeline]:
    """The pipelines of YAML ``text``; ``label`` names it in messages and ``base`` is the folder
    relative paths (schemas, templates) start from (the current one when ``None``)."""
    problems: list[str] = []
    pipelines: list[Pipeline] = []
    for document in read_documents(text, label):
        found = check(document)
        if not found:
            try:
                pipelines.append(_pipeline(document, base or Path.cwd()))
            except _Refused as refusal:
                found = [document.problem(refusal.path, refusal.message, key=refusal.key)]
            except _RefusedMany as refusals:
                found = [document.problem(r.path, r.message, key=r.key) for r in refusals.each]
        problems.extend(found)
    if problems:
        raise PipelineFileError(problems)
    return pipelines


class _RefusedMany(Exception):
    def __init__(self, each: list[_Refused]):
        super().__init__(each[0].message)
        self.each = each


def _pipeline(document: Document, base: Path) -> Pipeline:
    data: dict[str, Any] = document.data
    options: dict[str, Any] = {key: data[key] for key in _PIPELINE_KEYS if key in data}
    if "params" in data:
        options["params"] = _params(data["params"])
    if "inputs" in data:
        try:
            options["inputs"] = Inputs(**data["inputs"])
        except DefinitionError as error:
            raise _Refused(("inputs",), error.detail) from None
    if "retention" in data:
        options["retention"] = duration(data["retention"])
    if "templates" in data:
        options["templates"] = base / data["templates"]
    steps = _steps(data["steps"], base)
    try:
        return Pipeline(data["name"], steps, **options)
    except DefinitionError as error:
        names = [getattr(step, "step_name", None) for step in steps]
        path: FieldPath = ()
        if error.step in names:
            path = ("steps", names.index(error.step))
        raise _Refused(path, error.detail) from None


def _params(schema: dict[str, Any]) -> Any:
    try:
        return params_model(schema)
    except DefinitionError as error:
        where, _, message = error.detail.partition(": ")
        path: FieldPath = tuple(where.split(".")) if where.startswith("params") else ("params",)
        raise _Refused(path, message if message else error.detail) from None


def _steps(items: list[dict[str, Any]], base: Path) -> list[Task]:
    steps: list[Task] = []
    refused: list[_Refused] = []
    for index, step in enumerate(items):
        try:
            steps.append(_step(step, index, base))
        except _Refused as refusal:
            refused.append(refusal)
    if refused:
        raise _RefusedMany(refused)
    return steps


def _step(step: dict[str, Any], index: int, base: Path) -> Task:
    where: FieldPath = ("steps", index)
    if "python" in step:
        name = step.get("name") or step["python"]
        raise _Refused(
            where,
            f"step `{name}` is Python code ({step['python']}), which a YAML pipeline cannot "
            "hold; keep this pipeline in Python, or replace the step with a command or a "
            "library task",
        )
    try:
        if "command" in step:
            options = {k: v for k, v in step.items() if k not in _COMMAND_KEYS}
            return Command(step["name"], step["command"], **options)
        return _library_task(step, where, base)
    except DefinitionError as error:
        raise _Refused(where, error.detail) from None


def _library_task(step: dict[str, Any], where: FieldPath, base: Path) -> Task:
    cls = library_tasks()[step["task"]]
    options = {key: value for key, value in step.items() if key != "task"}
    known = _options_of(cls)
    for key in options:
        if key not in known:
            raise _Refused(
                (*where, key),
                f"is not an option of {step['task']} (its options: {', '.join(sorted(known))})",
                key=True,
            )
    if isinstance(options.get("schema"), str):
        options["schema"] = _beside(base, options["schema"], (*where, "schema"))
    if isinstance(options.get("choices"), dict):
        options["choices"] = {
            name: _beside(base, value, (*where, "choices", name))
            if isinstance(value, str)
            else value
            for name, value in options["choices"].items()
        }
    return cls(**options)


def _beside(base: Path, name: str, where: FieldPath) -> str:
    path = base / name
    if not path.is_file():
        raise _Refused(
            where, f"the file {name!r} does not exist (paths are relative to the pipeline file)"
        )
    return str(path)


def _options_of(cls: type) -> set[str]:
    names: set[str] = set()
    for klass in cls.__mro__:
        init = klass.__dict__.get("__init__")
        if init is None or klass is object:
            continue
        parameters = list(inspect.signature(init).parameters.values())[1:]
        names |= {p.name for p in parameters if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            break  # the rest of the chain is reached only through what this one passes
    return names
