"""Places in text files, for messages: ``line L column C``."""

from __future__ import annotations

from pathlib import Path

_CHUNK = 1 << 20


def utf8_error_start(data: bytes) -> int:
    """The index of the first byte of ``data`` that is not UTF-8 (its length if none)."""
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as error:
        return error.start
    return len(data)


def bad_utf8(path: Path) -> str | None:
    """Where the first byte that is not UTF-8 is (``line L column C``), or ``None``."""
    line, column, carry = 1, 1, b""
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            data = carry + chunk
            start = utf8_error_start(data)
            carry = b""
            if start < len(data) and len(data) - start <= 3:
                try:
                    data[start:].decode("utf-8")
                except UnicodeDecodeError as error:
                    if "unexpected end" in error.reason:
                        carry, data = data[start:], data[:start]
                        start = len(data)
            text = data[:start].decode("utf-8")
            newlines = text.count("\n")
            if newlines:
                line += newlines
                column = len(text) - text.rfind("\n")
            else:
                column += len(text)
            if start < len(data):
                return f"line {line} column {column}"
    return f"line {line} column {column}" if carry else None


def position(path: Path, offset: int | None) -> str:
    """``line L column C`` of character ``offset`` of a UTF-8 file (``None``: its end)."""
    line, column, seen = 1, 1, 0
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as text:
        while chunk := text.read(_CHUNK):
            if offset is not None and seen + len(chunk) > offset:
                chunk = chunk[: offset - seen]
            newlines = chunk.count("\n")
            if newlines:
                line += newlines
                column = len(chunk) - chunk.rfind("\n")
            else:
                column += len(chunk)
            seen += len(chunk)
            if offset is not None and seen >= offset:
                break
    return f"line {line} column {column}"
