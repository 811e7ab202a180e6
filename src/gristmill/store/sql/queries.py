"""The SQL store's statements, read by name from ``queries.sql`` beside this module.

The file is read once, when the store package is imported; the store then holds each statement
as a string, so naming them costs nothing per operation (measured: the hot path runs no file
access and no parsing, only the dictionary look-ups made at import).
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)


def parse(text: str) -> dict[str, str]:
    """Split ``text`` into its named statements: each begins at a ``-- name: <name>`` line and
    runs to the next; comment lines and surrounding blank space are left out. A name given twice
    is an error, so that no statement silently hides another."""
    parts = _NAME.split(text)
    queries: dict[str, str] = {}
    for name, body in zip(parts[1::2], parts[2::2], strict=True):
        if name in queries:
            raise ValueError(f"the query {name!r} is defined twice")
        lines = [line for line in body.splitlines() if not line.lstrip().startswith("--")]
        queries[name] = " ".join(" ".join(lines).split())
    return queries


def load() -> dict[str, str]:
    """Every statement of ``queries.sql`` by name."""
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    return parse(text)


QUERIES = load()
"""Every statement of the SQL store, by name."""
