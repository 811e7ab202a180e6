"""Nested JSON as one row of columns, and back, without loss.

gristmill's convention (documented in docs/library.md):

- A column's name is the path to a value: object keys and array indexes joined by ``/``
  (``parties/0/name``). In a key, ``~`` is written ``~0`` and ``/`` is written ``~1`` (as in a
  JSON Pointer), and a key made only of digits is written ``~n`` + the key, so that it cannot be
  read as an array index.
- An empty cell means "no value here" (the key is absent).
- A cell holding a string is the string, unless the string reads as JSON (``12``, ``true``,
  ``null``, ``"x"``, ``[]``...) or starts with ``'``: then one ``'`` is put before it.
- Any other value (a number, ``true``, ``false``, ``null``, an empty array or object) is
  written as its JSON text; a spreadsheet keeps numbers and booleans as its own numbers and
  booleans where that loses nothing (integers of at most 15 digits, non-integral floats).

So ``{"id": "12", "tags": ["a"], "n": 1.0, "note": ""}`` becomes the columns ``id`` =
``'12``, ``tags/0`` = ``a``, ``n`` = ``1.0`` and ``note`` = ``'``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any

Cell = str | int | float | bool
"""What a spreadsheet cell holds."""

_DIGITS = re.compile(r"[0-9]+")
_EXACT_INT = 10**15


class FlatteningError(ValueError):
    """A row whose columns do not make one JSON value (``a`` and ``a/b`` both set, say)."""


def escape_key(key: str) -> str:
    """An object key as one segment of a column name."""
    escaped = key.replace("~", "~0").replace("/", "~1")
    return "~n" + escaped if _DIGITS.fullmatch(key) else escaped


def unescape_key(segment: str) -> str | int:
    """A segment of a column name: an array index (``int``) or an object key (``str``)."""
    if _DIGITS.fullmatch(segment):
        return int(segment)
    if segment.startswith("~n"):
        segment = segment[2:]
    return segment.replace("~1", "/").replace("~0", "~")


def flatten(value: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """The (column, JSON leaf value) pairs of ``value``, in document order."""
    if isinstance(value, dict) and value:
        for key, inner in value.items():
            name = escape_key(str(key))
            yield from flatten(inner, f"{prefix}/{name}" if prefix else name)
    elif isinstance(value, list) and value:
        for index, inner in enumerate(value):
            yield from flatten(inner, f"{prefix}/{index}" if prefix else str(index))
    else:
        yield prefix, value


def to_cell(value: Any, *, native: bool) -> Cell:
    """The cell for a JSON leaf; ``native`` keeps numbers and booleans as themselves."""
    if isinstance(value, str):
        if not value:
            return "'"
        return "'" + value if _reads_as_json(value) or value.startswith("'") else value
    if native and isinstance(value, bool):
        return value
    if native and isinstance(value, int) and abs(value) < _EXACT_INT:
        return value
    if native and isinstance(value, float) and not value.is_integer():
        return value
    return json.dumps(value, ensure_ascii=False)


def from_cell(cell: Cell | None) -> Any:
    """The JSON value of a cell; ``None`` for an empty cell (no value)."""
    if cell is None or cell == "":
        return None
    if isinstance(cell, bool | int | float):
        return cell
    text = str(cell)
    if text.startswith("'"):
        return text[1:]
    try:
        return json.loads(text)
    except ValueError:
        return text


def unflatten(row: Mapping[str, Cell | None]) -> Any:
    """The JSON value a row of cells makes (columns as :func:`flatten` names them)."""
    root: dict[str, Any] = {}
    for column, cell in row.items():
        if cell is None or cell == "" or not column:
            continue
        _place(root, column.split("/"), from_cell(cell), column)
    return _listify(root)


def _place(node: dict[Any, Any], path: list[str], value: Any, column: str) -> None:
    for segment in path[:-1]:
        key = unescape_key(segment)
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            raise FlatteningError(f"column {column!r} lies inside a column that has a value")
        node = child
    key = unescape_key(path[-1])
    if key in node:
        raise FlatteningError(f"column {column!r} is given twice or holds other columns")
    node[key] = value


def _listify(node: Any) -> Any:
    # Dicts keyed by ints were arrays: indexes become positions, in order.
    if not isinstance(node, dict):
        return node
    if node and all(isinstance(key, int) for key in node):
        return [_listify(node[key]) for key in sorted(node)]
    return {str(key): _listify(inner) for key, inner in node.items()}


def _reads_as_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True
