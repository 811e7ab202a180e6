"""Pipelines written out as YAML, in the format :mod:`gristmill.authoring.yamlimport` reads.

Command steps are written with their argv template and options, library tasks by their public
name with the options they were made with (a schema read from a file is written inline, so the
file stands alone). What a file cannot hold is never dropped silently: a step that is Python
code is written as ``python: module.Name`` (the import refuses it, naming the step), and Python
attached to the pipeline (validators, parameter validators, an ``applicable`` predicate, a
webhook secret, a templates folder) is listed in :attr:`Export.notes`, which also head the text
as comments.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import yaml

from gristmill.authoring.commands import Command
from gristmill.authoring.inputs import Inputs
from gristmill.authoring.paramschema import params_schema, python_validators
from gristmill.authoring.pipelines import NoParams, Pipeline
from gristmill.authoring.tasks import Task
from gristmill.authoring.yamlimport import library_tasks

HEADER = "# gristmill pipelines: see 'Pipelines as YAML' in docs/pipelines.md\n"
_FLOW_WIDTH = 90
_DURATIONS = (("d", 86400), ("h", 3600), ("m", 60))
_SCHEMA_FIRST = ("type", "title", "description", "default")


@dataclass
class Export:
    """What :func:`export_pipelines` wrote."""

    text: str
    """The YAML, one document per pipeline."""
    notes: list[str] = field(default_factory=list)
    """What could not be written (Python code), one sentence each."""


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True  # the format refuses anchors and aliases

    def represent_list(self, data: Iterable[Any]) -> yaml.SequenceNode:
        items = list(data)
        flat = all(isinstance(item, str | int | float | bool) for item in items)
        short = flat and len(repr(items)) <= _FLOW_WIDTH
        return self.represent_sequence("tag:yaml.org,2002:seq", items, flow_style=short)

    def represent_text(self, data: str) -> yaml.Node:
        style = "|" if "\n" in data else None  # scripts stay readable, line by line
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


_Dumper.add_representer(list, _Dumper.represent_list)
_Dumper.add_representer(str, _Dumper.represent_text)


def _schema_order(node: Any) -> Any:
    # pydantic writes keys alphabetically; a reader looks for the type and title first.
    if isinstance(node, dict):
        first = [key for key in _SCHEMA_FIRST if key in node]
        keys = first + [key for key in node if key not in first and key != "$defs"]
        keys += ["$defs"] if "$defs" in node else []
        return {key: _schema_order(node[key]) for key in keys}
    if isinstance(node, list):
        return [_schema_order(item) for item in node]
    return node


def _number(value: float) -> float | int:
    return int(value) if float(value).is_integer() else value


def duration_text(retention: timedelta) -> int | str:
    """A retention as the file writes it: ``7d``, ``12h``, ``90m``, or whole seconds."""
    seconds = int(retention.total_seconds())
    for unit, size in _DURATIONS:
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    return seconds


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(item) for item in value]
    if isinstance(value, Path):
        return str(value)
    return value


def _command(task: Command, notes: list[str]) -> dict[str, Any]:
    step: dict[str, Any] = {"name": task.name, "command": list(task.argv)}
    defaults: dict[str, Any] = {
        "outputs": (),
        "timeout": None,
        "ok_codes": (0,),
        "warn_codes": (),
        "env": {},
        "stdout_json": False,
        "network": True,
        "title": None,
        "description": None,
        "version": None,
        "needs": (),
        "packages": (),
        "staff_only": ("argv",),
    }
    for key, default in defaults.items():
        value = getattr(task, key)
        if value is None and default is not None:
            step[key] = None
        elif _plain(value) != _plain(default):
            step[key] = _plain(value)
    if getattr(task, "_applicable", None) is not None:
        notes.append(f"step `{task.name}`: its applicable= predicate is Python code")
    return step


def _library(task: Task, name: str) -> dict[str, Any]:
    if name == "EvaluatePython":
        assert isinstance(task, Command)
        step: dict[str, Any] = {"task": name, "name": task.name}
        step["param"] = task.argv[3].removeprefix("{params.").removesuffix("}")
        step |= {"timeout": task.timeout, "outputs": list(task.outputs)}
        return step | {"stdout_json": task.stdout_json, "title": task.title}
    options = dict(getattr(task, "given", {}))
    choice = getattr(task, "choice", None)
    if choice is not None:  # schemas written inline: the file stands alone
        if options.get("schema") is not None:
            options["schema"] = choice.schemas[""]
        if options.get("choices") is not None:
            options["choices"] = {key: choice.schemas[key] for key in options["choices"]}
    named = {key: options.pop(key) for key in ("name", "title") if key in options}
    return {"task": name, **_plain(named), **_plain(options)}


def step_entry(task: Task, notes: list[str]) -> dict[str, Any]:
    """One step as the file writes it; Python code is marked ``python:`` and noted."""
    library = {cls: name for name, cls in library_tasks().items()}
    if type(task) in library:
        return _library(task, library[type(task)])
    if type(task) is Command:
        return _command(task, notes)
    # A Command subclass's identity names its program; the Python is its class.
    code = task.identity
    if isinstance(task, Command):
        code = f"{type(task).__module__}.{type(task).__qualname__}"
    notes.append(f"step `{task.step_name}` is Python code ({code})")
    return {"name": task.step_name, "python": code}


def pipeline_document(pipeline: Pipeline, notes: list[str]) -> dict[str, Any]:
    """``pipeline`` as one YAML document's data; what it cannot hold is added to ``notes``."""
    where = f"pipeline `{pipeline.name}`"
    document: dict[str, Any] = {"name": pipeline.name, "title": pipeline.title}
    if pipeline.description:
        document["description"] = pipeline.description
    document |= {"access": str(pipeline.access), "queue": pipeline.queue}
    document |= {"priority": pipeline.priority, "retention": duration_text(pipeline.retention)}
    document["step_timeout"] = _number(pipeline.step_timeout)
    document["max_attempts"] = pipeline.max_attempts
    if pipeline.inputs != Inputs():
        document["inputs"] = pipeline.inputs.describe()
    if pipeline.params is not NoParams:
        document["params"] = _schema_order(params_schema(pipeline.params))
        for checker in python_validators(pipeline.params):
            notes.append(f"{where}: parameter validator {checker}() is Python code")
    if pipeline.webhooks:
        document["webhooks"] = list(pipeline.webhooks)
    if pipeline.ancestor is not None:
        document["ancestor"] = pipeline.ancestor
    if len(pipeline.ancestors_from) > 1:
        document["ancestors_from"] = list(pipeline.ancestors_from[1:])
    if pipeline.page_template is not None:
        document["page_template"] = pipeline.page_template
    for validator in pipeline.validators:
        label = getattr(validator, "__name__", repr(validator))
        notes.append(f"{where}: input validator {label}() is Python code")
    if pipeline.webhook_secret is not None:
        notes.append(f"{where}: its webhook secret is never written to a file")
    if pipeline.template_dirs:
        notes.append(f"{where}: its templates folder is not written; name it with `templates:`")
    document["steps"] = [step_entry(task, notes) for task in pipeline.steps]
    return document


def export_pipelines(pipelines: Sequence[Pipeline]) -> Export:
    """``pipelines`` as the text of one YAML file, with what it could not hold."""
    notes: list[str] = []
    documents = [pipeline_document(pipeline, notes) for pipeline in pipelines]
    body = yaml.dump_all(documents, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100)
    comments = "".join(f"# not exported: {note}\n" for note in notes)
    return Export(text=HEADER + comments + body, notes=notes)
