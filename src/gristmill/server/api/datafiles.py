"""Data files of the signed-in caller: list, upload, describe, download, delete.

Anonymous callers are asked to sign in (401); a data file the caller may not see answers 404,
exactly like one that does not exist (see :mod:`gristmill.server.datafiles`).
"""

from __future__ import annotations

from typing import Any

from django.http import FileResponse, HttpRequest, HttpResponse
from ninja import Router, Status

from gristmill.app.service import default_service
from gristmill.errors import TooLargeError
from gristmill.server import datafiles
from gristmill.server.api.auth import caller_of
from gristmill.server.api.bodies import MULTIPART, require_media_type, unnamed_file
from gristmill.server.api.downloads import DOWNLOAD_DOC, attachment
from gristmill.server.api.errors import ApiError
from gristmill.server.api.schemas import DataFileOut, ErrorOut, datafile_links
from gristmill.server.models import DataFile
from gristmill.server.statuses import status_of

router = Router(tags=["data files"])

FILE_FIELD = "file"

_UPLOAD_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        FILE_FIELD: {
                            "type": "string",
                            "format": "binary",
                            "description": "The file to keep.",
                        }
                    },
                    "required": [FILE_FIELD],
                }
            }
        },
    }
}


def describe(datafile: DataFile) -> DataFileOut:
    """The data file as the API shows it."""
    file_id = str(datafile.pk)
    return DataFileOut(
        id=file_id,
        name=datafile.name,
        size=datafile.size,
        sha256=datafile.sha256,
        media_type=datafile.media_type,
        created_at=datafile.created_at,
        owner=datafile.owner.get_username(),
        **datafile_links(file_id),
    )


@router.get("", response={200: list[DataFileOut], 401: ErrorOut})
def list_datafiles(request: HttpRequest) -> list[DataFileOut]:
    """The caller's data files, newest first (staff: everyone's)."""
    return [describe(datafile) for datafile in datafiles.visible(caller_of(request))]


@router.post(
    "",
    response={
        201: DataFileOut,
        400: ErrorOut,
        401: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        507: ErrorOut,
    },
    openapi_extra=_UPLOAD_DOC,
)
def upload_datafile(request: HttpRequest) -> Status[DataFileOut]:
    """Keep a file on the server (201), to use as an input of runs again and again.

    Send it as ``multipart/form-data`` in the field ``file``. Its name is reduced to a safe base
    name; a file over the server's limit for data files (``GRISTMILL_DATAFILE_MAX_SIZE``)
    answers 413 and nothing is kept.
    """
    caller = caller_of(request)
    service = default_service()
    datafiles.owner_id(caller)  # an anonymous caller is asked to sign in before any check
    require_media_type(request, MULTIPART)
    uploaded = _the_one_upload(request)
    limit = service.settings.datafile_max_size
    try:
        datafile = datafiles.create_from_upload(caller, uploaded, service=service)
    except TooLargeError as error:
        message = datafiles.limit_message(limit)
        raise ApiError.invalid({FILE_FIELD: [message]}, status=status_of(error)) from None
    return Status(201, describe(datafile))


def _the_one_upload(request: HttpRequest) -> Any:
    files = request.FILES
    problems = {
        field: [f"upload the file in the field '{FILE_FIELD}'"]
        for field in sorted(set(files) - {FILE_FIELD})
    }
    uploads = files.getlist(FILE_FIELD)
    if unnamed_file(request.POST, FILE_FIELD):
        problems[FILE_FIELD] = [
            'the file needs a file name (filename="..." in its part\'s Content-Disposition)'
        ]
    elif not uploads and not problems:
        problems[FILE_FIELD] = ["is required: upload the file as multipart/form-data"]
    elif len(uploads) > 1:
        problems[FILE_FIELD] = ["upload one file at a time"]
    if problems:
        raise ApiError.invalid(problems)
    return uploads[0]


@router.get("/{file_id}", response={200: DataFileOut, 401: ErrorOut, 404: ErrorOut})
def get_datafile(request: HttpRequest, file_id: str) -> DataFileOut:
    """Describe one data file: its name, size, digest and media type."""
    return describe(datafiles.get(caller_of(request), file_id))


@router.get(
    "/{file_id}/content",
    response={401: ErrorOut, 404: ErrorOut},
    openapi_extra=DOWNLOAD_DOC,
)
def download_datafile(request: HttpRequest, file_id: str) -> FileResponse:
    """The data file itself, as an attachment: in its media type if that is a safe one (data,
    images), else as ``application/octet-stream``."""
    datafile = datafiles.get(caller_of(request), file_id)
    stream = datafiles.open_stored(datafile, default_service())
    return attachment(stream, datafile.name, datafile.media_type, datafile.size)


@router.delete("/{file_id}", response={204: None, 401: ErrorOut, 404: ErrorOut})
def delete_datafile(request: HttpRequest, file_id: str) -> HttpResponse:
    """Delete a data file. Runs that used it keep their own copies."""
    datafiles.delete(caller_of(request), file_id, service=default_service())
    return HttpResponse(status=204)
