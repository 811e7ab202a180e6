"""A pipeline's parameters as a JSON Schema, and back to a parameter model.

:func:`params_schema` is what a pipeline's ``params`` model says about itself
(``model_json_schema()``); :func:`params_model` builds a pydantic model from such a schema, so that
a YAML pipeline validates, shows and fingerprints its parameters exactly as the Python definition
it was exported from. The subset read is what pydantic writes for plain parameters: text,
whole numbers, numbers, booleans, lists of these, ``null`` alternatives (``anyOf``), choices
(``enum``, or a ``$ref`` to an enum under ``$defs``), ``default``, ``title``, ``description`` and
the usual bounds (``minimum``, ``maximum``, ``exclusiveMinimum``, ``exclusiveMaximum``,
``multipleOf``, ``minLength``, ``maxLength``, ``pattern``, ``minItems``, ``maxItems``).
Anything else is refused naming the parameter and the keyword: custom validators written in
Python cannot travel in a file.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, create_model

from gristmill.errors import DefinitionError

_SCALARS: dict[str, Any] = {"string": str, "integer": int, "number": float, "boolean": bool}
_BOUNDS = {
    "minimum": "ge",
    "maximum": "le",
    "exclusiveMinimum": "gt",
    "exclusiveMaximum": "lt",
    "multipleOf": "multiple_of",
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "minItems": "min_length",
    "maxItems": "max_length",
}
_FIELD_WORDS = {"title", "description", "default"}
_ROOT_WORDS = {"type", "title", "description", "properties", "required", "additionalProperties"}


def params_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The JSON Schema of the parameter model ``model``."""
    return model.model_json_schema()


def python_validators(model: type[BaseModel]) -> list[str]:
    """The names of the validators written in Python on ``model`` (they cannot be exported)."""
    decorators = model.__pydantic_decorators__
    found = [*decorators.field_validators, *decorators.model_validators]
    found += [*decorators.root_validators, *decorators.validators]
    return sorted(found)


class _Reader:
    def __init__(self, schema: dict[str, Any]):
        self.defs: dict[str, Any] = schema.get("$defs") or {}
        self.enums: dict[str, type[Enum]] = {}

    def annotation(self, node: Any, where: str) -> Any:
        if not isinstance(node, dict):
            raise DefinitionError(f"{where}: must be a JSON Schema (a mapping)")
        if "$ref" in node:
            return self.enum(node["$ref"], where)
        if "anyOf" in node:
            members = [self.annotation(member, where) for member in node["anyOf"]]
            return Union[tuple(members)]  # noqa: UP007 - built from a list
        if "enum" in node:
            self.refuse(node, {"enum", "type", *_FIELD_WORDS}, where)
            return Literal[tuple(node["enum"])]
        kind = node.get("type")
        if kind == "null":
            return type(None)
        if kind == "array":
            self.refuse(node, {"type", "items", "minItems", "maxItems", *_FIELD_WORDS}, where)
            item = self.annotation(node["items"], where) if "items" in node else Any
            return self.bounded(list[item], node)  # type: ignore[valid-type]
        if kind in _SCALARS:
            self.refuse(node, {"type", *_BOUNDS, *_FIELD_WORDS, "format"}, where)
            return self.bounded(_SCALARS[kind], node)
        raise DefinitionError(
            f"{where}: type {kind!r} is not supported; a parameter is text (string), a whole "
            "number (integer), a number, a boolean, a list (array) of these, or a choice (enum)"
        )

    def bounded(self, base: Any, node: dict[str, Any]) -> Any:
        bounds = {_BOUNDS[key]: value for key, value in node.items() if key in _BOUNDS}
        return Annotated[base, Field(**bounds)] if bounds else base

    def enum(self, reference: Any, where: str) -> type[Enum]:
        name = str(reference).removeprefix("#/$defs/")
        target = self.defs.get(name)
        if not isinstance(target, dict) or "enum" not in target:
            raise DefinitionError(f"{where}: $ref {reference!r} must name an enum under $defs")
        if name not in self.enums:
            values = target["enum"]
            members = {f"v{index}": value for index, value in enumerate(values)}
            if target.get("type") == "string":
                members = {str(value): value for value in values}
            base = {"string": str, "integer": int, "number": float}.get(target.get("type", ""))
            # Written as pydantic writes an Enum class: the same schema, the same values.
            made = Enum(name, members, type=base)  # type: ignore[misc]
            self.enums[name] = made
        return self.enums[name]

    @staticmethod
    def refuse(node: dict[str, Any], allowed: set[str], where: str) -> None:
        unknown = sorted(set(node) - allowed)
        if unknown:
            raise DefinitionError(
                f"{where}: the JSON Schema keyword {unknown[0]!r} is not supported in a "
                "pipeline's parameters"
            )


def _is_enum(annotation: Any) -> bool:
    return isinstance(annotation, type) and issubclass(annotation, Enum)


def params_model(schema: dict[str, Any], default_name: str = "Params") -> type[BaseModel]:
    """A pydantic model for the parameter schema ``schema``; :class:`DefinitionError` naming
    the parameter (``params.properties.NAME``) and what is not supported."""
    unknown = sorted(set(schema) - _ROOT_WORDS - {"$defs"})
    if unknown:
        raise DefinitionError(
            f"params: the JSON Schema keyword {unknown[0]!r} is not supported at the top of a "
            "pipeline's parameters"
        )
    reader = _Reader(schema)
    required = set(schema.get("required") or ())
    properties = schema.get("properties") or {}
    fields: dict[str, Any] = {}
    for name, node in properties.items():
        where = f"params.properties.{name}"
        annotation = reader.annotation(node, where)
        words = {key: node[key] for key in ("title", "description") if key in node}
        if name in required:
            fields[name] = (annotation, Field(**words))
        elif "default" not in node and node.get("type") == "array":
            # pydantic writes no default for a list made fresh for each run (default_factory).
            fields[name] = (annotation, Field(default_factory=list, **words))
        else:
            default = node.get("default")
            if _is_enum(annotation) and default is not None:
                default = annotation(default)
            fields[name] = (annotation, Field(default, **words))
    missing = sorted(required - set(properties))
    if missing:
        raise DefinitionError(f"params.required: names {missing[0]!r}, which is not a parameter")
    extra: Literal["forbid", "ignore"] = (
        "forbid" if schema.get("additionalProperties") is False else "ignore"
    )
    name = str(schema.get("title") or default_name)
    try:
        model: type[BaseModel] = create_model(
            name,
            __config__=ConfigDict(extra=extra),
            __doc__=schema.get("description"),
            **fields,
        )
    except (TypeError, ValueError) as error:
        raise DefinitionError(f"params: cannot be made into parameters: {error}") from None
    return model
