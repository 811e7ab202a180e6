"""What a file holds, told from its first bytes: the types gristmill knows by content.

:func:`sniff` reads at most :data:`HEAD_BYTES` of a file and names its type by extension
(``"json"``, ``"jsonl"``, ``"csv"``, ``"xlsx"``, ...), or ``None`` for binary data it does not
know. It uses magic bytes and the standard library only (``zipfile`` for the members of a ZIP
container, ``csv.Sniffer`` for delimited text): no libmagic. It judges the look of a file, not
its validity: a file that starts like JSON is JSON here, so that the step that parses it can
say exactly where it is broken.

:func:`matches` says whether content of a found type may carry a name with a given extension
(a ``.txt`` may hold CSV; a ``.json`` may not hold a spreadsheet).
"""

from __future__ import annotations

import codecs
import csv
import json
import zipfile
from pathlib import Path

HEAD_BYTES = 64 * 1024
"""How much of a file is read to tell its type."""

DESCRIPTIONS = {
    "json": "JSON",
    "jsonl": "JSON Lines",
    "csv": "CSV",
    "tsv": "tab-separated values",
    "txt": "plain text",
    "xml": "XML",
    "html": "HTML",
    "xlsx": "an XLSX spreadsheet",
    "ods": "an ODS spreadsheet",
    "docx": "a DOCX document",
    "odt": "an ODT document",
    "xls": "an old-style Office file (XLS/DOC)",
    "zip": "a ZIP archive",
    "pdf": "a PDF document",
    "png": "a PNG image",
    "jpg": "a JPEG image",
    "gif": "a GIF image",
    "gz": "gzip-compressed data",
}
"""The types :func:`sniff` can name, each with words for people."""

MEDIA_TYPES = {
    "json": "application/json",
    "jsonl": "application/x-ndjson",
    "csv": "text/csv",
    "tsv": "text/tab-separated-values",
    "txt": "text/plain",
    "xml": "application/xml",
    "html": "text/html",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "ods": "application/vnd.oasis.opendocument.spreadsheet",
    "docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
    "odt": "application/vnd.oasis.opendocument.text",
    "xls": "application/vnd.ms-excel",
    "zip": "application/zip",
    "pdf": "application/pdf",
    "png": "image/png",
    "jpg": "image/jpeg",
    "gif": "image/gif",
    "gz": "application/gzip",
}

ALIASES = {"ndjson": "jsonl", "jpeg": "jpg", "htm": "html", "text": "txt", "doc": "xls"}
"""Other extensions of the same types."""

_TEXT = frozenset({"txt", "csv", "tsv", "json", "jsonl", "xml", "html"})
_CONTAINERS = frozenset({"xlsx", "ods", "docx", "odt"})
_MAGIC = (
    (b"%PDF-", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpg"),
    (b"GIF87a", "gif"),
    (b"GIF89a", "gif"),
    (b"\x1f\x8b", "gz"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "xls"),
)
_OPENDOCUMENT = {
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
    b"application/vnd.oasis.opendocument.text": "odt",
}


def canonical(extension: str) -> str:
    """``extension`` lower-cased, without the dot, with aliases resolved (``ndjson`` →
    ``jsonl``)."""
    plain = extension.lower().lstrip(".")
    return ALIASES.get(plain, plain)


def describe(kind: str | None) -> str:
    """Words for a type :func:`sniff` found (``None``: binary data of an unknown type)."""
    if kind is None:
        return "binary data of a type gristmill does not recognise"
    return DESCRIPTIONS.get(kind, f".{kind}")


def from_media_type(media_type: str | None) -> str | None:
    """The type a ``Content-Type`` names, if it is one :func:`sniff` knows."""
    if not media_type:
        return None
    plain = media_type.split(";", 1)[0].strip().lower()
    for kind, known in MEDIA_TYPES.items():
        if plain == known:
            return kind
    extras = {"text/json": "json", "application/jsonl": "jsonl", "text/xml": "xml"}
    return extras.get(plain)


def sniff(path: Path) -> str | None:
    """The type of the file at ``path`` by its content (see :data:`DESCRIPTIONS`), or
    ``None`` for binary data of another type."""
    with path.open("rb") as stream:
        head = stream.read(HEAD_BYTES)
        whole = len(head) < HEAD_BYTES or not stream.read(1)
    for magic, kind in _MAGIC:
        if head.startswith(magic):
            return kind
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return _zip_kind(path)
    text = _as_text(head, whole)
    if text is None:
        return None
    return _text_kind(text, whole)


def matches(extension: str, found: str | None) -> bool:
    """Whether content of type ``found`` may carry a name ending in ``extension``.

    An extension gristmill cannot tell by content matches anything.
    """
    ext = canonical(extension)
    if ext not in DESCRIPTIONS:
        return True
    if found is None:
        return False
    return (
        ext == found
        or (ext == "txt" and found in _TEXT)
        or (ext in ("csv", "tsv") and found in ("txt", "csv", "tsv"))
        or (ext == "jsonl" and found == "json")
        or (ext == "html" and found == "xml")
        or (ext == "zip" and found in _CONTAINERS)
    )


def _zip_kind(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            if "mimetype" in names:
                declared = archive.read("mimetype").strip()
                if declared in _OPENDOCUMENT:
                    return _OPENDOCUMENT[declared]
    except (zipfile.BadZipFile, OSError, KeyError, ValueError, NotImplementedError):
        return "zip"  # looks like one; the step that opens it says what is wrong
    if "[Content_Types].xml" in names:
        if any(name.startswith("xl/") for name in names):
            return "xlsx"
        if any(name.startswith("word/") for name in names):
            return "docx"
    return "zip"


_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)


def _as_text(head: bytes, whole: bool) -> str | None:
    # Text in UTF-16 or UTF-32 is text (whether a step can read that encoding is its call).
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            usable = len(head) - (len(head) - len(bom)) % (4 if "32" in encoding else 2)
            return head[len(bom) : usable].decode(encoding, errors="replace")
    if b"\0" in head:
        return None
    for encoding in ("utf-8-sig", "cp1252"):
        try:
            return head.decode(encoding)
        except UnicodeDecodeError as error:
            # A character cut in two at the end of the head is no reason to call it binary.
            if encoding == "utf-8-sig" and not whole and error.start >= len(head) - 3:
                return head[: error.start].decode(encoding)
    return head.decode("latin-1")


def _text_kind(text: str, whole: bool) -> str:
    body = text.lstrip()
    if body[:1] in ("{", "["):
        return "jsonl" if _json_lines(body) else "json"
    if body.startswith("<"):
        start = body[:200].lower()
        return "html" if start.startswith(("<!doctype html", "<html")) else "xml"
    lines = text.splitlines()
    if not whole:
        lines = lines[:-1]  # the last may be cut short
    sample = "\n".join(lines[:50])
    if len(lines) >= 1 and sample.strip():
        try:
            dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            return "txt"
        rows = list(csv.reader(sample.splitlines(), dialect))
        widths = {len(row) for row in rows if row}
        if len(widths) == 1 and widths.pop() > 1:
            return "tsv" if dialect.delimiter == "\t" else "csv"
    return "txt"


def _json_lines(body: str) -> bool:
    # JSON Lines: at least two lines, and the first two each a JSON value on their own.
    lines = [line for line in body.splitlines()[:3] if line.strip()]
    if len(lines) < 2:
        return False
    for line in lines[:2]:
        try:
            json.loads(line)
        except (ValueError, RecursionError):  # a line nested too deeply is no JSON Lines
            return False
    return True
