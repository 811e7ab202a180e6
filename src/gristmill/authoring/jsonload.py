"""Reading JSON that a user sent, where every failure is a message for that user.

Python's :mod:`json` fails on some valid JSON in ways no user can act on: a document nested
deeper than the interpreter's recursion limit (about a thousand levels) raises
``RecursionError``, and an integer longer than ``sys.get_int_max_str_digits()`` digits (4,300
by default) a ``ValueError`` that advises calling ``sys.set_int_max_str_digits()``. :func:`loads`
and :func:`load` raise :class:`JsonError` instead, naming the line and column, for those as for
any syntax error. ``NaN`` and ``Infinity``, which are not JSON, are refused too.

>>> from gristmill.authoring.jsonload import load
>>> data = load(run.input.path, name=run.input.name)  # in a task: a TaskError on failure
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import IO, Any

from gristmill.errors import JsonError

__all__ = ["JsonError", "load", "loads"]

# The tokens that matter for finding where a document passes a limit: strings (skipped whole,
# so that brackets and digits inside them do not count), brackets, numbers and the constants.
_TOKEN = re.compile(
    r'"(?:[^"\\]|\\.)*"?|(?P<open>[\[{])|(?P<close>[\]}])'
    r"|(?P<number>-?\d+(?P<fraction>[.eE][-+\d.eE]*)?)|(?P<constant>NaN|-?Infinity)"
)


class _Constant(ValueError):
    pass


def _refuse_constant(token: str) -> Any:
    raise _Constant(token)


def loads(data: str | bytes, *, name: str = "the data") -> Any:
    """The JSON value in ``data`` (text, or bytes in UTF-8, -16 or -32).

    Raises :class:`JsonError`, naming the data ``name`` and the line and column, if it is not
    JSON or passes a limit of the parser (depth, length of an integer).
    """
    try:
        return json.loads(data, parse_constant=_refuse_constant)
    except json.JSONDecodeError as error:
        raise JsonError(f"is not valid JSON: {error}", name) from None
    except UnicodeDecodeError as error:
        detail = f"is not valid JSON: it is not UTF-8 text (byte {error.start} is not valid)"
        raise JsonError(detail, name) from None
    except (RecursionError, ValueError) as error:
        # The parser says neither where nor, in words for a user, what: find both.
        raise JsonError(_diagnose(data, error), name) from None


def load(file: str | os.PathLike[str] | IO[bytes], *, name: str | None = None) -> Any:
    """The JSON value in a file, given by its path or as a binary stream; :class:`JsonError`
    as for :func:`loads` (named ``name``, else the file's name)."""
    if isinstance(file, str | os.PathLike):
        with open(file, "rb") as stream:
            data = stream.read()
        label = name or os.path.basename(os.fspath(file))
    else:
        data = file.read()
        label = name or "the data"
    return loads(data, name=label)


def _diagnose(data: str | bytes, error: Exception) -> str:
    """Why a document the parser refused without a position cannot be read, and where."""
    text = data if isinstance(data, str) else data.decode("utf-8", errors="replace")
    most_digits = sys.get_int_max_str_digits() or None
    depth, deepest, deepest_at = 0, 0, 0
    for token in _TOKEN.finditer(text):
        kind = token.lastgroup
        if kind == "open":
            depth += 1
            if depth > deepest:
                deepest, deepest_at = depth, token.start()
        elif kind == "close":
            depth -= 1
        elif kind == "constant":
            where = _position(text, token.start())
            return f"is not valid JSON: {token.group()} is not allowed ({where})"
        elif kind == "number" and not token.group("fraction") and most_digits:
            digits = len(token.group().lstrip("-"))
            if digits > most_digits:
                return (
                    f"holds an integer too long to read: {digits:,} digits at "
                    f"{_position(text, token.start())} (at most {most_digits:,})"
                )
    if isinstance(error, RecursionError):
        where = _position(text, deepest_at)
        return f"is nested too deeply to read: {deepest:,} levels at {where}"
    return f"is not valid JSON: {error}"


def _position(text: str, index: int) -> str:
    line = text.count("\n", 0, index) + 1
    column = index - text.rfind("\n", 0, index)
    return f"line {line} column {column}"
