"""The JSON Schema of a YAML pipeline, shipped beside this module as ``pipeline.schema.json``.

A document is checked against it before anything is built from it; each mistake becomes one
message naming the line, the column and the field. The schema's own ``x-message`` keyword (which
validators ignore) holds the words said when a field does not match, e.g. ``must be a number of
seconds``.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema

from gristmill.authoring.yamlsource import Document, FieldPath

SCHEMA_FILE = "pipeline.schema.json"
"""The schema's file name, inside the ``gristmill.authoring`` package."""


@functools.cache
def pipeline_schema() -> dict[str, Any]:
    """The JSON Schema of one pipeline document, as shipped in the package."""
    text = resources.files("gristmill.authoring").joinpath(SCHEMA_FILE).read_text("utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema


@functools.cache
def _validator() -> Any:
    schema = pipeline_schema()
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema)


def _message(error: jsonschema.ValidationError) -> tuple[FieldPath, str, bool]:
    path: FieldPath = tuple(error.absolute_path)
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return path, f"`{missing}` is missing", False
    if error.validator == "additionalProperties" and isinstance(error.instance, dict):
        allowed = error.schema.get("properties", {})
        unknown = sorted(key for key in error.instance if key not in allowed)
        known = ", ".join(sorted(allowed))
        first = (*path, unknown[0]) if unknown else path
        return first, f"is not a field here (the fields are: {known})", bool(unknown)
    written = error.schema.get("x-message") if isinstance(error.schema, dict) else None
    return path, written or error.message, False


def check(document: Document) -> list[str]:
    """The mistakes of ``document`` against the schema, one message each, in the file's order;
    empty if there are none."""
    found: dict[str, tuple[tuple[int, int], str]] = {}
    for error in _validator().iter_errors(document.data):
        path, message, on_key = _message(error)
        text = document.problem(path, message, key=on_key)
        position = (document.keys if on_key else document.values).get(path, document.start)
        found.setdefault(text, (position, text))
    return [text for _, text in sorted(found.values())]
