"""Opening XLSX workbooks a user sent, refusing XML entity declarations."""

from __future__ import annotations

import zipfile
from typing import TYPE_CHECKING, Any

from gristmill.errors import TaskError

if TYPE_CHECKING:
    from gristmill.library.reading import DataFile

MAX_SHARED_STRINGS = 100 * 1024 * 1024
"""The most bytes of shared strings (``xl/sharedStrings.xml`` uncompressed) a workbook may hold:
openpyxl reads them into memory whole, even in read-only mode. The size is the one the archive
declares, which is also the most the ZIP reader will ever produce."""


def open_workbook(file: DataFile) -> Any:
    """``file`` opened with openpyxl in read-only mode; a :class:`TaskError` if it cannot be.

    XML entity declarations are refused (the defusedxml parser openpyxl uses when installed),
    so an entity-expansion workbook cannot blow up memory.
    """
    import openpyxl

    refuse_document_types(file)
    try:
        return openpyxl.load_workbook(file.path, read_only=True, data_only=True)
    except Exception as error:  # openpyxl raises many kinds on hostile files
        kind = type(error).__name__
        if "Entit" in kind or "DTD" in kind:
            raise TaskError(
                f"{file.name} declares XML entities, which are refused (entity expansion)"
            ) from None
        raise TaskError(f"{file.name} is not a readable XLSX file: {error or kind}") from None


def refuse_document_types(file: DataFile) -> None:
    """A :class:`TaskError` if a part of the workbook declares a DTD or entities, or if its
    shared strings (which openpyxl holds in memory whole) would expand past
    :data:`MAX_SHARED_STRINGS` bytes."""
    # Spreadsheet programs never write a DTD; one in a workbook is there to declare entities.
    try:
        with zipfile.ZipFile(file.path) as archive:
            for entry in archive.infolist():
                if entry.filename.endswith("sharedStrings.xml") and (
                    entry.file_size > MAX_SHARED_STRINGS
                ):
                    raise TaskError(
                        f"{file.name} holds {entry.file_size:,} bytes of shared text, more "
                        f"than the {MAX_SHARED_STRINGS:,} that can be read; save it as CSV"
                    )
                if entry.filename.endswith((".xml", ".rels")):
                    with archive.open(entry) as part:
                        head = part.read(4096)
                    if b"<!DOCTYPE" in head or b"<!ENTITY" in head:
                        raise TaskError(
                            f"{file.name} declares XML entities in {entry.filename}, which "
                            "are refused (entity expansion)"
                        )
    except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as error:
        raise TaskError(f"{file.name} is not a readable XLSX file: {error}") from None
