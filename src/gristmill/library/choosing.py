"""Which JSON Schema a run is checked against: one fixed, one of several picked by a
parameter, or one the user sent as an input.

``schema=`` fixes one (a dict or the path of a JSON file). ``choices={"name": schema, ...}``
with ``param="NAME"`` offers several: the pipeline parameter ``NAME`` holds the key (give it a
``Literal`` type or an ``Enum`` so that the form offers the keys). ``schema_input=N`` takes the
run's input number ``N`` (counting from 0) as the schema when the run has it, before the
others; without the others, a run without it fails saying so. Fixed and offered schemas are
read and checked when the pipeline is defined (:class:`DefinitionError`); a sent one when the
step runs (:class:`TaskError`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.errors import DefinitionError, TaskError
from gristmill.library.schemas import load_schema

Schema = Mapping[str, Any] | str | Path


class SchemaChoice:
    """The schemas a task may use, and which one a run uses (see the module's docstring)."""

    def __init__(
        self,
        schema: Schema | None = None,
        *,
        choices: Mapping[str, Schema] | None = None,
        param: str | None = None,
        schema_input: int | None = None,
        required: bool = True,
    ):
        if schema is not None and choices is not None:
            raise DefinitionError("give either schema= or choices=, not both")
        if (choices is None) != (param is None):
            raise DefinitionError("choices= and param= go together: param names the choice")
        if required and schema is None and choices is None and schema_input is None:
            raise DefinitionError("give a schema: schema=, choices= with param=, or schema_input=")
        self.schemas: dict[str, dict[str, Any]] = {}
        if schema is not None:
            self.schemas[""] = load_schema(schema)
        for key, value in (choices or {}).items():
            self.schemas[str(key)] = load_schema(value)
        self.param = param
        self.schema_input = schema_input

    @property
    def uses(self) -> tuple[str, ...]:
        """The parameters the choice reads."""
        return () if self.param is None else (self.param,)

    def pick(self, run: RunContext) -> tuple[str, dict[str, Any]] | None:
        """(name, schema) for ``run``: the sent schema's file name, the chosen key, or ``""``
        for the fixed one; ``None`` if there is none."""
        if self.schema_input is not None and len(run.inputs) > self.schema_input:
            sent = run.inputs[self.schema_input]
            try:
                return sent.name, load_schema(sent.path)
            except DefinitionError as error:
                raise TaskError(f"{sent.name}: {error.detail}") from None
        if self.param is not None:
            key = getattr(run.params, self.param, None)
            key = getattr(key, "value", key)  # an Enum member stands for its value
            if str(key) not in self.schemas:
                known = ", ".join(sorted(self.schemas))
                raise TaskError(f"no schema named {key!r} (known: {known})")
            return str(key), self.schemas[str(key)]
        if "" in self.schemas:
            return "", self.schemas[""]
        if self.schema_input is not None:
            raise TaskError(f"this pipeline needs a JSON Schema as input {self.schema_input + 1}")
        return None

    def describe(self) -> dict[str, Any]:
        """What counts in the fingerprint."""
        return {"schemas": self.schemas, "param": self.param, "input": self.schema_input}
