"""Files sent for download (outputs, data files): always attachments, and in a media type
that no browser runs.

A file keeps the media type it was declared with (by its uploader, or by the step that made
it) only if that type is on :data:`SAFE_TYPES`; anything else, ``text/html`` or
``image/svg+xml`` among them, is sent as ``application/octet-stream``, so that a browser
opening it by mistake cannot run what it holds as a page of this site.
"""

from __future__ import annotations

from typing import IO, Any

from django.http import FileResponse

OCTET_STREAM = "application/octet-stream"
SAFE_TYPES = (
    "text/plain",
    "text/csv",
    "text/tab-separated-values",
    "application/json",
    "application/zip",
    "application/gzip",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "application/vnd.ms-excel",
    "image/png",
    "image/jpeg",
    "image/gif",
    "image/webp",
)
"""Media types a download is sent in as declared: data, and images a browser only shows."""

DOWNLOAD_DOC: dict[str, Any] = {
    "responses": {
        200: {
            "description": "The file, as an attachment: in its declared media type if that is "
            f"one of {', '.join(SAFE_TYPES)}; otherwise as {OCTET_STREAM}.",
            "content": {
                media_type: {"schema": {"type": "string", "format": "binary"}}
                for media_type in (*SAFE_TYPES, OCTET_STREAM)
            },
        }
    }
}
"""The OpenAPI description of a download's 200 answer (``openapi_extra``)."""


def served_type(declared: str) -> str:
    """The media type a file declared as ``declared`` is sent in."""
    plain = declared.split(";")[0].strip().lower()
    return plain if plain in SAFE_TYPES else OCTET_STREAM


def attachment(
    stream: IO[bytes], filename: str, declared: str, size: int | None = None
) -> FileResponse:
    """``stream`` (a stored file, open for reading; sent in chunks and closed) as a download
    named ``filename`` of ``size`` bytes, in :func:`served_type` of ``declared``, with
    ``X-Content-Type-Options: nosniff`` so that no browser guesses another type."""
    response = FileResponse(
        stream, as_attachment=True, filename=filename, content_type=served_type(declared)
    )
    if size is not None and "Content-Length" not in response:  # a stream from remote storage
        response["Content-Length"] = str(size)
    response["X-Content-Type-Options"] = "nosniff"
    return response
