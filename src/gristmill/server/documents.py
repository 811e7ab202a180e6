"""JSON documents: the content of a user's JSON data files, kept in the database to be searched.

* A data file that is JSON by its content and no larger than ``json_document_max_size``
  (``GRISTMILL_JSON_DOCUMENT_MAX_SIZE``) is also kept, parsed, as one JSON document when it is
  stored; one stored before (or over a limit since raised) is kept on request (:func:`keep`).
  Any other file stays a plain data file, and :func:`why_not_kept` says why.
* A document goes with its data file: deleting the file deletes it (the database cascades).
* Access is the data files' own (:mod:`gristmill.server.datafiles`): a caller sees the
  documents of the data files they see, and anything else answers like a file that does not
  exist.

A **JSON path** names a value inside a document: keys separated by dots (``meta.source``); a
part made of digits is a position in an array (``parties.0.name``). :func:`search` finds the
documents whose value at a path equals a given JSON value (or that have the path at all). It
goes through Django's JSON key lookups, JSON1's ``json_extract`` on SQLite and ``->`` on
PostgreSQL, where a jsonb containment (``@>``) that the GIN index of migration 0013 serves
first narrows the documents to those that can match.
"""

from __future__ import annotations

import json
import logging
import math
import uuid
from pathlib import Path
from typing import Any

from django.db import DataError, connections, router, transaction
from django.db.models import F, QuerySet
from django.db.models.fields.json import KeyTransform
from django.template.defaultfilters import filesizeformat

from gristmill.app.service import Service
from gristmill.authoring.jsonload import load
from gristmill.authoring.sniffing import describe as describe_format
from gristmill.errors import JsonError, NotFoundError
from gristmill.library.reading import judge
from gristmill.server import datafiles
from gristmill.server.access import Caller
from gristmill.server.models import DataFile, JsonDocument

__all__ = [
    "JsonPathError",
    "JsonValueError",
    "NotKeptError",
    "get",
    "keep",
    "keep_if_json",
    "parse_path",
    "parse_value",
    "search",
    "why_not_kept",
]

logger = logging.getLogger(__name__)

MAX_PATH_LENGTH = 500
"""The longest JSON path a search takes, in characters."""
MAX_PATH_PARTS = 32
"""The most parts (keys or positions) a JSON path may have."""


class JsonPathError(ValueError):
    """A JSON path that cannot be read; the message says what is wrong with it."""


class JsonValueError(ValueError):
    """A value that cannot be searched for; the message says why."""


class NotKeptError(ValueError):
    """A data file that cannot be kept as a JSON document; the message says why.
    ``too_large`` tells a file over the size limit from one that is not JSON."""

    def __init__(self, message: str, *, too_large: bool = False):
        super().__init__(message)
        self.too_large = too_large


def parse_path(text: str) -> tuple[str | int, ...]:
    """The parts of the JSON path ``text``: keys, and positions (ints) for parts of digits.

    Raises :class:`JsonPathError` for an empty path, an empty part (``a..b``, a leading or
    trailing dot), a control character, a double quote or a backslash (which SQLite's JSON
    paths cannot hold), or a path over the limits.
    """
    if not text:
        raise JsonPathError("give a JSON path: keys separated by dots, such as meta.source")
    if len(text) > MAX_PATH_LENGTH:
        raise JsonPathError(f"a JSON path has at most {MAX_PATH_LENGTH} characters")
    if any(ord(char) < 32 or ord(char) == 127 for char in text):
        raise JsonPathError(f"{text!r} holds a control character; keys are printable text")
    if '"' in text or "\\" in text:
        raise JsonPathError(f"{text!r}: keys with a double quote or a backslash cannot be searched")
    parts = text.split(".")
    if len(parts) > MAX_PATH_PARTS:
        raise JsonPathError(f"a JSON path has at most {MAX_PATH_PARTS} parts")
    if any(not part for part in parts):
        raise JsonPathError(
            f"{text!r} has an empty part: separate keys with single dots, such as meta.source"
        )
    return tuple(int(part) if part.isascii() and part.isdigit() else part for part in parts)


def parse_value(text: str) -> Any:
    """The JSON value searched for: ``text`` read as JSON if it is JSON (``3``, ``true``,
    ``null``, ``"3"``), else ``text`` itself as a string (``census``, ``NaN``, ``1e400``).

    Raises :class:`JsonValueError` for an object or an array, which the databases compare
    differently (PostgreSQL whatever the order of the keys, SQLite as written), and for the
    character ``\\u0000``, which no document holds.
    """
    if "\x00" in text or "\\u0000" in text:
        raise JsonValueError("no document holds the character \\u0000: leave it out")
    try:
        value = json.loads(text, parse_constant=_not_json)
    except ValueError:
        return text
    if isinstance(value, float) and not math.isfinite(value):
        return text  # beyond 1.8e308: no document holds such a number, text might
    if isinstance(value, dict | list):
        raise JsonValueError(
            "search for one value (text, a number, true, false or null), not an object or an "
            "array: give the path of a value inside it, such as tags.0"
        )
    return value


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not JSON")


def _problem(path: Path, name: str, size: int, limit: int) -> tuple[Any, NotKeptError | None]:
    found = judge(name, path)
    if found != "json":
        return None, NotKeptError(f"it is {describe_format(found)}, not a JSON document")
    if size > limit:
        message = f"it is larger than the limit of {filesizeformat(limit)} for JSON documents"
        return None, NotKeptError(message, too_large=True)
    try:
        value = load(path, name=name)
    except JsonError as error:
        return None, NotKeptError(str(error).removeprefix(name).strip())
    unkeepable = _unkeepable(value)
    if unkeepable:
        return None, NotKeptError(f"{unkeepable}, which a JSON document in the database cannot")
    return value, None


def _unkeepable(value: Any) -> str | None:
    # PostgreSQL's jsonb refuses the NUL character, and a number too large for a float (1e400)
    # reads as infinity, which is not JSON: both are refused alike on every database.
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, str) and "\x00" in item:
            return "it holds the character \\u0000"
        if isinstance(item, float) and not math.isfinite(item):
            return "it holds a number too large to keep (beyond 1.8e308)"
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
    return None


def keep(datafile: DataFile, *, service: Service) -> JsonDocument:
    """Keep the data file's content as its JSON document (replacing any kept before).

    Raises :class:`NotKeptError` saying why if it is not JSON, is larger than the
    ``json_document_max_size`` setting, or cannot be read; :class:`NotFoundError` if its bytes
    are gone.
    """
    path = datafiles.stored_path(datafile, service)
    limit = service.settings.json_document_max_size
    value, problem = _problem(path, datafile.name, datafile.size, limit)
    if problem is not None:
        raise problem
    document, _ = JsonDocument.objects.update_or_create(datafile=datafile, defaults={"data": value})
    return document


def keep_if_json(datafile: DataFile, *, service: Service) -> JsonDocument | None:
    """:func:`keep`, for a data file just stored: its document, or None (no error) if it is not
    one. The data file is kept either way."""
    try:
        with transaction.atomic(using=router.db_for_write(JsonDocument)):
            return keep(datafile, service=service)
    except (NotKeptError, NotFoundError):
        return None
    except DataError:  # content the database refuses that the checks above did not foresee
        logger.warning("data file %s not kept as a JSON document", datafile.pk, exc_info=True)
        return None


def why_not_kept(datafile: DataFile, *, service: Service) -> str:
    """Why the data file has no JSON document, as the end of a sentence."""
    path = datafiles.stored_path(datafile, service)
    limit = service.settings.json_document_max_size
    _, problem = _problem(path, datafile.name, datafile.size, limit)
    return str(problem) if problem else "it was stored before its kind was kept as one"


def get(caller: Caller, file_id: str | uuid.UUID, *, service: Service) -> JsonDocument:
    """The JSON document of the data file ``file_id``, if ``caller`` may see the file;
    :class:`NotFoundError` otherwise, or (saying why) if the file has no document."""
    datafile = datafiles.get(caller, file_id)
    try:
        return JsonDocument.objects.get(datafile=datafile)
    except JsonDocument.DoesNotExist:
        reason = why_not_kept(datafile, service=service)
        raise NotFoundError(
            f"the data file {datafile.name!r} is not kept as a JSON document: {reason}"
        ) from None


def search(caller: Caller, path: str, value: str | None) -> QuerySet[DataFile]:
    """The data files ``caller`` sees whose JSON document has ``value`` (read by
    :func:`parse_value`) at the JSON ``path``, or, with no value, has the path at all; newest
    first. Raises :class:`~gristmill.errors.SignInRequiredError` for an anonymous caller and
    :class:`JsonPathError` for a path that cannot be read, :class:`JsonValueError` for an
    object or array as the value."""
    datafiles.owner_id(caller)  # an anonymous caller is asked to sign in before any check
    parts = parse_path(path)
    at: Any = F("document__data")
    for part in parts:
        at = KeyTransform(str(part), at)
    files = datafiles.visible(caller).alias(found=at)
    if value is None:
        return files.filter(found__isnull=False)
    wanted = parse_value(value)
    if connections[files.db].vendor == "postgresql":
        files = files.filter(document__data__contains=_containing(parts, wanted))
    return files.filter(found=wanted)


def _containing(parts: tuple[str | int, ...], value: Any) -> Any:
    # What any document with ``value`` at ``parts`` contains (jsonb's @>): the GIN index finds
    # these; the exact comparison then keeps the right position in each array.
    for part in reversed(parts):
        value = [value] if isinstance(part, int) else {part: value}
    return value
