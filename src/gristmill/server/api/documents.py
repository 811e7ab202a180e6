"""JSON documents of data files, and conversions of data files: search by a JSON path, read a
document back, keep a stored file as one, convert a file to JSON, CSV or XLSX.

Access is the data files' (see :mod:`gristmill.server.documents`): anonymous callers are asked
to sign in (401), and a data file the caller may not see answers 404.
"""

from __future__ import annotations

from typing import Any

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, JsonResponse
from ninja import P, QueryEx, Router, Status
from pydantic import BaseModel, Field

from gristmill.app.service import default_service
from gristmill.errors import TooLargeError
from gristmill.server import conversions, datafiles, documents
from gristmill.server.api.auth import caller_of
from gristmill.server.api.bodies import JSON, json_body
from gristmill.server.api.datafiles import describe
from gristmill.server.api.errors import ApiError
from gristmill.server.api.schemas import DataFileOut, ErrorOut, Out
from gristmill.server.links import api_path
from gristmill.server.models import DataFile
from gristmill.server.statuses import status_of

router = Router(tags=["JSON documents"])
"""Mounted at ``/documents``: the search."""
datafile_router = Router(tags=["JSON documents"])
"""Mounted at ``/datafiles``: a data file's document and its conversions."""

MAX_PER_PAGE = 100


class ConversionIn(BaseModel):
    to: str = Field(description="The datatype to convert to: json, csv or xlsx.")


class DocumentFileOut(DataFileOut):
    document_url: str = Field(description="The data file's JSON document.")


class DocumentsOut(Out):
    count: int = Field(description="How many data files match, on all pages.")
    page: int
    pages: int
    results: list[DocumentFileOut] = Field(description="The data files of this page.")


_CONVERSION_DOC: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {JSON: {"schema": ConversionIn.model_json_schema()}},
    }
}


def document_url(file_id: str) -> str:
    """The API resource of the data file ``file_id``'s JSON document."""
    return api_path(f"datafiles/{file_id}/document")


def _described(datafile: DataFile) -> DocumentFileOut:
    return DocumentFileOut(
        **describe(datafile).model_dump(), document_url=document_url(str(datafile.pk))
    )


@router.get("", response={200: DocumentsOut, 400: ErrorOut, 401: ErrorOut, 422: ErrorOut})
def search_documents(
    request: HttpRequest,
    path: str,
    value: str | None = None,
    page: QueryEx[int, P(ge=1, description="The page, from 1.")] = 1,
    per_page: QueryEx[int, P(ge=1, le=MAX_PER_PAGE, description="At most 100.")] = 50,
) -> DocumentsOut:
    """The caller's data files (staff: everyone's) whose JSON document has ``value`` at the
    JSON ``path``, newest first, a page at a time.

    ``path`` is keys separated by dots (``meta.source``); a part of digits is a position in an
    array (``parties.0.name``). ``value`` is read as JSON if it is JSON (``3``, ``true``,
    ``null``, ``"3"``), else taken as a string (``census``); without ``value``, the documents
    that have the path at all. A path that cannot be read, or an object or array as the value,
    answers 400.
    """
    try:
        files = documents.search(caller_of(request), path, value)
    except documents.JsonPathError as error:
        raise ApiError.invalid({"path": [str(error)]}) from None
    except documents.JsonValueError as error:
        raise ApiError.invalid({"value": [str(error)]}) from None
    paginator = Paginator(files, per_page)
    shown = paginator.get_page(page)
    return DocumentsOut(
        count=paginator.count,
        page=shown.number,
        pages=paginator.num_pages,
        results=[_described(datafile) for datafile in shown.object_list],
    )


@datafile_router.get("/{file_id}/document", response={200: Any, 401: ErrorOut, 404: ErrorOut})
def get_document(request: HttpRequest, file_id: str) -> HttpResponse:
    """The data file's JSON document: the JSON value it holds. A data file without one answers
    404 saying why (not JSON, larger than ``GRISTMILL_JSON_DOCUMENT_MAX_SIZE``, ...)."""
    document = documents.get(caller_of(request), file_id, service=default_service())
    return JsonResponse(document.data, safe=False, json_dumps_params={"ensure_ascii": False})


@datafile_router.post(
    "/{file_id}/document",
    response={201: DocumentFileOut, 400: ErrorOut, 401: ErrorOut, 404: ErrorOut, 413: ErrorOut},
)
def keep_document(request: HttpRequest, file_id: str) -> Status[DocumentFileOut]:
    """Keep a stored data file as a JSON document now (201): one stored before documents were
    kept, or over a limit since raised. 400 says why a file cannot be one; 413 if it is larger
    than ``GRISTMILL_JSON_DOCUMENT_MAX_SIZE``."""
    datafile = datafiles.get(caller_of(request), file_id)
    try:
        documents.keep(datafile, service=default_service())
    except documents.NotKeptError as error:
        message = f"{datafile.name} cannot be kept as a JSON document: {error}"
        raise ApiError(413 if error.too_large else 400, message) from None
    return Status(201, _described(datafile))


@datafile_router.post(
    "/{file_id}/conversions",
    response={
        201: DataFileOut,
        400: ErrorOut,
        401: ErrorOut,
        404: ErrorOut,
        413: ErrorOut,
        415: ErrorOut,
        422: ErrorOut,
    },
    openapi_extra=_CONVERSION_DOC,
)
def convert_datafile(request: HttpRequest, file_id: str) -> Status[DataFileOut]:
    """Convert a data file to another datatype, kept as a new data file of the caller (201):
    ``{"to": "csv"}``, ``"xlsx"`` or ``"json"``. JSON and JSON Lines convert to CSV or XLSX
    (nested data flattened to columns such as ``meta/source``), CSV and XLSX to JSON (and to
    each other), as the task library's converters do. 400 says why a file cannot be
    converted; 413 if the result is larger than the data file limit."""
    caller = caller_of(request)
    datafiles.owner_id(caller)  # an anonymous caller is asked to sign in before any check
    body = json_body(request, ConversionIn)
    service = default_service()
    try:
        converted = conversions.convert(caller, file_id, body.to, service=service)
    except conversions.ConversionError as error:
        raise ApiError.invalid({"to": [str(error)]}) from None
    except TooLargeError as error:
        message = datafiles.limit_message(service.settings.datafile_max_size)
        raise ApiError(status_of(error), f"the converted {message.removeprefix('the ')}") from None
    return Status(201, describe(converted))
