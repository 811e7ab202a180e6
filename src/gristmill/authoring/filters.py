"""Filters that choose the items of an earlier run for a new run (a *filtered run*).

An items input names a run, one of its map steps, and which of the step's items to take:
those where a JSON path has a value (``$.buyer.id == "GB-1"``), or those the step found a
given kind of finding for. The path syntax is small on purpose:

- ``$`` is the item itself;
- ``.name`` is a field of an object (letters, digits, ``_`` and ``-``);
- ``["any name"]`` is a field whose name has other characters (a JSON string);
- ``[3]`` is an element of an array, from 0.

A path that does not lead anywhere in an item (a missing field, an index past the end, a
field of something that is not an object) does not match. Values are compared as JSON values:
``1`` matches ``1`` and ``1.0`` but not ``"1"`` nor ``true``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_STEP = re.compile(r'\.([A-Za-z0-9_-]+)|\[(-?\d+)\]|\[("(?:[^"\\]|\\.)*")\]')

Path = tuple[str | int, ...]


def parse_path(text: str) -> Path:
    """The parts of a path; a ``ValueError`` saying what is wrong with it."""
    if not isinstance(text, str) or not text.startswith("$"):
        raise ValueError('a path starts with "$" (the item), e.g. $.buyer.id')
    parts: list[str | int] = []
    position = 1
    while position < len(text):
        match = _STEP.match(text, position)
        if match is None:
            raise ValueError(
                f"cannot read the path {text!r} at character {position + 1}: use .name, "
                '["a name"] or [index]'
            )
        field, index, quoted = match.groups()
        if field is not None:
            parts.append(field)
        elif index is not None:
            if int(index) < 0:
                raise ValueError(f"an index counts from 0: [{index}] in {text!r}")
            parts.append(int(index))
        else:
            parts.append(json.loads(quoted))
        position = match.end()
    return tuple(parts)


_MISSING = object()


def select(item: Any, path: Path) -> Any:
    """The value at ``path`` in ``item``, or a marker that matches nothing."""
    for part in path:
        if isinstance(part, int):
            if not isinstance(item, list) or part >= len(item):
                return _MISSING
        elif not isinstance(item, dict) or part not in item:
            return _MISSING
        item = item[part]
    return item


def same_json(found: Any, value: Any) -> bool:
    """Whether two JSON values are equal (``True`` is not ``1``; ``1`` is ``1.0``)."""
    if isinstance(found, bool) or isinstance(value, bool):
        return isinstance(found, bool) and isinstance(value, bool) and found == value
    if isinstance(found, list) and isinstance(value, list):
        return len(found) == len(value) and all(map(same_json, found, value))
    if isinstance(found, dict) and isinstance(value, dict):
        return found.keys() == value.keys() and all(same_json(found[k], value[k]) for k in found)
    if type(found) in (int, float) and type(value) in (int, float):
        return bool(found == value)
    return type(found) is type(value) and bool(found == value)


@dataclass(frozen=True)
class ItemFilter:
    """Which items of an earlier run's map step a filtered run takes: ``where`` (a path) equal
    to ``value``, or those with a finding of kind ``finding``."""

    run_id: str
    step: str
    where: str | None = None
    value: Any = None
    finding: str | None = None

    def matches(self, item: Any) -> bool:
        """Whether ``item`` matches the path filter (not used for findings)."""
        assert self.where is not None
        return same_json(select(item, parse_path(self.where)), self.value)

    def describe(self) -> str:
        """The filter for people: ``$.buyer.id == "GB-1"`` or ``finding negative-amount``."""
        if self.finding is not None:
            return f"with a finding {self.finding!r}"
        return f"where {self.where} == {json.dumps(self.value, ensure_ascii=False)}"

    def to_source(self) -> str:
        """The filter as stored with the run's input (JSON)."""
        data: dict[str, Any] = {"run": self.run_id, "step": self.step}
        if self.finding is not None:
            data["finding"] = self.finding
        else:
            data["where"], data["value"] = self.where, self.value
        return json.dumps(data, sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_source(cls, text: str) -> ItemFilter:
        """The filter stored by :meth:`to_source`."""
        data = json.loads(text)
        return cls(
            data["run"], data["step"], data.get("where"), data.get("value"), data.get("finding")
        )
