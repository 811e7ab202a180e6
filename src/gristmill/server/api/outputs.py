"""A run's output files: listed, downloaded one by one, or streamed as one zip.

A download is looked up among the run's stored output records by step and name; no path is
ever built from what the client sent.
"""

from __future__ import annotations

import functools
import io
import time
import zipfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import PurePosixPath
from typing import IO
from urllib.parse import quote

from django.http import FileResponse, HttpRequest, StreamingHttpResponse
from ninja import Router

from gristmill.app.service import Service, default_service
from gristmill.errors import NotFoundError
from gristmill.server.access import visible_run
from gristmill.server.api.auth import caller_of
from gristmill.server.api.downloads import DOWNLOAD_DOC, attachment
from gristmill.server.api.schemas import ErrorOut, OutputOut
from gristmill.server.links import api_path
from gristmill.store.records import OutputRecord

router = Router(tags=["outputs"])

CHUNK = 1 << 20
_BINARY = {"schema": {"type": "string", "format": "binary"}}


def _download_doc(media_type: str) -> dict[str, object]:
    return {"responses": {200: {"description": "The file.", "content": {media_type: _BINARY}}}}


@router.get("/{run_id}/outputs", response={200: list[OutputOut], 404: ErrorOut})
def list_outputs(request: HttpRequest, run_id: str) -> list[OutputOut]:
    """The run's output files, step by step, each with its size, digest and download URL."""
    status = visible_run(caller_of(request), run_id, default_service())
    return [
        OutputOut(
            step=output.step,
            name=output.name,
            size=output.size,
            sha256=output.sha256,
            media_type=output.media_type,
            url=api_path(f"runs/{status.id}/outputs/{quote(output.step)}/{quote(output.name)}"),
        )
        for output in status.outputs
    ]


@router.get(
    "/{run_id}/outputs.zip",
    response={404: ErrorOut},
    openapi_extra=_download_doc("application/zip"),
)
def download_zip(request: HttpRequest, run_id: str) -> StreamingHttpResponse:
    """Every output of the run in one zip file, entries named ``<step>/<name>``, streamed as it
    is made."""
    service = default_service()
    status = visible_run(caller_of(request), run_id, service)
    files = [(f"{o.step}/{o.name}", o.size, _stored_file(service, o)) for o in status.outputs]
    response = StreamingHttpResponse(zip_stream(files), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="run-{status.id}.zip"'
    return response


@router.get(
    "/{run_id}/outputs/{step}/{path:name}",
    response={404: ErrorOut},
    openapi_extra=DOWNLOAD_DOC,
)
def download_output(request: HttpRequest, run_id: str, step: str, name: str) -> FileResponse:
    """One output file of a step, as an attachment: in its media type if that is a safe one
    (data, images), else as ``application/octet-stream``."""
    service = default_service()
    status = visible_run(caller_of(request), run_id, service)
    for output in status.outputs:
        if output.step == step and output.name == name:
            stream = _stored_file(service, output)()
            name = PurePosixPath(output.name).name
            return attachment(stream, name, output.media_type, output.size)
    raise NotFoundError(f"step {step!r} of this run has no output named {name!r}")


def _stored_file(service: Service, output: OutputRecord) -> Callable[[], IO[bytes]]:
    """What opens the stored output; :class:`NotFoundError` at once if it is gone."""
    if not service.storage.exists(output.path):
        raise NotFoundError(
            f"the output {output.name!r} of step {output.step!r} is not stored any more"
        )
    return functools.partial(service.storage.open, output.path)


class _Sink(io.RawIOBase):
    """An unseekable file that keeps what is written until it is taken."""

    def __init__(self) -> None:
        self._chunks: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, data: bytes) -> int:  # type: ignore[override]
        self._chunks.append(bytes(data))
        return len(data)

    def take(self) -> bytes:
        data = b"".join(self._chunks)
        self._chunks.clear()
        return data


def zip_stream(files: Sequence[tuple[str, int, Callable[[], IO[bytes]]]]) -> Iterator[bytes]:
    """Yield a zip of ``(entry name, size, opener)`` files piece by piece, holding about one
    chunk of each file in memory at a time (each opened only when its turn comes)."""
    sink = _Sink()
    now = time.localtime()[:6]
    with zipfile.ZipFile(sink, mode="w", compression=zipfile.ZIP_DEFLATED) as archive:
        for entry, size, opener in files:
            info = zipfile.ZipInfo(entry, date_time=now)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.file_size = size  # decides whether the entry needs zip64
            info.external_attr = 0o644 << 16
            with opener() as source, archive.open(info, "w") as target:
                while chunk := source.read(CHUNK):
                    target.write(chunk)
                    if data := sink.take():
                        yield data
            if data := sink.take():
                yield data
    yield sink.take()
