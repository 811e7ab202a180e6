"""The SQL store's statements, read by name from ``queries.sql`` beside this module.

The file is read once, when the store package is imported; the store then holds each statement
as a string, so naming them costs nothing per operation (measured: the hot path runs no file
access and no parsing, only the dictionary look-ups made at import).
"""

from __future__ import annotations

import re
from importlib import resources

_NAME = re.compile(r"^-- name: (\w+)\s*$", re.MULTILINE)
_FRAGMENT = re.compile(r"\{(\w+)\(([^(){}]*)\)\}")


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


def expand(queries: dict[str, str]) -> dict[str, str]:
    """``queries`` with each ``{name(arg)}`` replaced by the statement ``name`` (a fragment),
    whose ``{arg}`` becomes ``arg``: one subquery written once, used by several statements."""

    def fragment(match: re.Match[str]) -> str:
        name, arg = match.groups()
        if name not in queries:
            raise ValueError(f"no fragment {name!r} for {match.group(0)}")
        return queries[name].replace("{arg}", arg)

    return {name: _FRAGMENT.sub(fragment, sql) for name, sql in queries.items()}


def load() -> dict[str, str]:
    """Every statement of ``queries.sql`` by name, fragments expanded."""
    text = resources.files(__package__).joinpath("queries.sql").read_text(encoding="utf-8")
    return expand(parse(text))


QUERIES = load()
"""Every statement of the SQL store, by name."""
