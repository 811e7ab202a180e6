"""Field coverage, value types and additional fields.

:class:`FieldStatistics` walks every item of a data file and counts, for each field (a path
with array indexes as ``[*]``, e.g. ``$.parties[*].name``), how many items hold it and which
JSON types its values have. Given a schema, it also lists the **additional fields**: fields in
the data that the schema does not describe (no ``properties``, ``patternProperties`` or
``items`` entry leads to them, through local ``$ref``, ``allOf``, ``anyOf``, ``oneOf``,
``if``/``then``/``else``), with how many times each occurs and in which items. Only the top of
an additional subtree is listed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from gristmill.authoring.context import RunContext
from gristmill.library.base import LibraryTask
from gristmill.library.choosing import SchemaChoice
from gristmill.library.reading import ItemReader
from gristmill.library.schemas import json_path

_TYPES = ((bool, "boolean"), (int, "integer"), (float, "number"), (str, "string"))


def type_name(value: Any) -> str:
    """The JSON type of a value read from JSON."""
    if value is None:
        return "null"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return next((name for kind, name in _TYPES if isinstance(value, kind)), "unknown")


def _matches(pattern: str, key: str) -> bool:
    # A schema's patterns are ECMA-262; one Python cannot read describes nothing here.
    try:
        return re.search(pattern, key) is not None
    except re.error:
        return False


class SchemaMap:
    """Which fields a schema describes (see the module's docstring)."""

    def __init__(self, schema: Mapping[str, Any]):
        self.root = schema

    def children(self, schema: Any, key: str | int) -> list[Any]:
        """The subschemas that describe ``key`` (an object key or array index) of a value
        described by ``schema``; empty if none does."""
        found: list[Any] = []
        for node in self._expand(schema, 0):
            if isinstance(key, str):
                properties = node.get("properties") or {}
                if key in properties:
                    found.append(properties[key])
                for pattern, sub in (node.get("patternProperties") or {}).items():
                    if _matches(pattern, key):
                        found.append(sub)
            else:
                prefix = node.get("prefixItems")
                items = node.get("items")
                if isinstance(prefix, list) and key < len(prefix):
                    found.append(prefix[key])
                elif isinstance(items, list):
                    if key < len(items):
                        found.append(items[key])
                elif isinstance(items, dict):
                    found.append(items)
        return found

    def _expand(self, schema: Any, depth: int) -> Iterator[dict[str, Any]]:
        if not isinstance(schema, dict) or depth > 32:
            return
        yield schema
        reference = schema.get("$ref")
        if isinstance(reference, str) and reference.startswith("#"):
            yield from self._expand(self._resolve(reference), depth + 1)
        for word in ("allOf", "anyOf", "oneOf"):
            for sub in schema.get(word) or ():
                yield from self._expand(sub, depth + 1)
        for word in ("then", "else"):
            if word in schema:
                yield from self._expand(schema[word], depth + 1)

    def _resolve(self, reference: str) -> Any:
        node: Any = self.root
        for part in reference.lstrip("#").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                return None
            node = node[part]
        return node


class FieldStatistics(LibraryTask):
    """Count fields, value types and (given a schema) additional fields."""

    title = "Fields"
    network = False  # it runs over data users send, as the validator does
    description = (
        "Which fields the data holds, how often, with which types, and which the schema "
        "does not describe."
    )

    def __init__(
        self,
        schema: Mapping[str, Any] | str | Path | None = None,
        *,
        choices: Mapping[str, Mapping[str, Any] | str | Path] | None = None,
        param: str | None = None,
        schema_input: int | None = None,
        examples: int = 5,
        max_fields: int = 2000,
        **options: Any,
    ):
        self.choice = SchemaChoice(
            schema, choices=choices, param=param, schema_input=schema_input, required=False
        )
        self.examples = examples
        self.max_fields = max_fields
        super().__init__(
            schema=self.choice.describe(), examples=examples, fields=max_fields, **options
        )
        self.uses = self.choice.uses

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        picked = self.choice.pick(run)
        counter = FieldCounter(
            None if picked is None else SchemaMap(picked[1]), self.examples, self.max_fields
        )
        reader = ItemReader(self.data(run), items=self.items)
        items = 0
        with run.stage("counting fields"), self.nesting(reader):
            for index, item in self.each_item(run, reader):
                items += 1
                counter.add(index, item)
        fields = sorted(counter.fields.values(), key=lambda f: f["path"])
        additional = sorted(counter.additional.values(), key=lambda f: (-f["count"], f["path"]))
        run.log(f"{items:,} items, {len(fields):,} fields, {len(additional):,} additional")
        return {
            "file": reader.file.name,
            "schema": None if picked is None else picked[0],
            "items": items,
            "fields": fields,
            "fields_omitted": counter.omitted,
            "additional_fields": additional if counter.map else None,
        }

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if not isinstance(result, dict):
            return super().context(run, result)
        items = result["items"] or 1
        coverage = [
            {
                "field": field["path"],
                "items": field["items"],
                "coverage": f"{100 * field['items'] / items:.0f}%",
                "types": ", ".join(f"{k} {v:,}" for k, v in sorted(field["types"].items())),
            }
            for field in result["fields"]
        ]
        shown: dict[str, Any] = {"summary": f"{result['items']:,} items in {result['file']}"}
        if result["additional_fields"] is not None:
            shown["additional_fields"] = [
                {"field": entry["path"], "count": entry["count"]}
                for entry in result["additional_fields"]
            ]
        shown["fields"] = coverage
        return shown


class FieldCounter:
    """The counts of one run: fields with their types, and additional fields (with a map of
    the schema), at most ``limit`` of each and ``examples`` examples of each additional one."""

    def __init__(self, schema_map: SchemaMap | None, examples: int, limit: int):
        self.map = schema_map
        self.examples = examples
        self.limit = limit
        self.fields: dict[str, dict[str, Any]] = {}
        self.additional: dict[str, dict[str, Any]] = {}
        self.omitted = 0

    def add(self, index: int, item: Any) -> None:
        """Count the fields of item ``index``."""
        seen: set[str] = set()
        self._walk(item, (), [self.map.root] if self.map else None, index, seen, True)
        for path in seen:
            self.fields[path]["items"] += 1

    def _walk(
        self,
        value: Any,
        path: tuple[str | int, ...],
        schemas: Any,
        index: int,
        seen: set[str],
        described: bool,
    ) -> None:
        if path:
            self._count(json_path(path, pattern=True), value, seen)
        if not isinstance(value, dict | list):
            return
        pairs = value.items() if isinstance(value, dict) else enumerate(value)
        for key, inner in pairs:
            below: Any = None
            inner_described = False
            if described and self.map is not None:
                below = [s for schema in schemas for s in self.map.children(schema, key)]
                inner_described = bool(below)
                if not inner_described:
                    self._note_additional((*path, key), index)
            self._walk(inner, (*path, key), below, index, seen, inner_described)

    def _count(self, pattern: str, value: Any, seen: set[str]) -> None:
        field = self.fields.get(pattern)
        if field is None:
            if len(self.fields) >= self.limit:
                self.omitted += 1
                return
            field = self.fields[pattern] = {"path": pattern, "items": 0, "types": {}}
        kind = type_name(value)
        field["types"][kind] = field["types"].get(kind, 0) + 1
        seen.add(pattern)

    def _note_additional(self, path: tuple[str | int, ...], index: int) -> None:
        pattern = json_path(path, pattern=True)
        entry = self.additional.get(pattern)
        if entry is None:
            if len(self.additional) >= self.limit:
                return
            entry = self.additional[pattern] = {"path": pattern, "count": 0, "examples": []}
        entry["count"] += 1
        if len(entry["examples"]) < self.examples:
            entry["examples"].append({"item": index, "path": json_path(path)})
