"""Request bodies: the media types an operation takes, and JSON bodies read into a model.

A body is read only in the media types its operation documents. Anything else is refused with
415 before it is read: in particular ``text/plain``, which any web page may make its visitors'
browsers send to any site, with no preflight, so that accepting JSON under it would let other
sites act through their visitors' browsers.
"""

from __future__ import annotations

from typing import TypeVar

from django.http import HttpRequest, QueryDict
from pydantic import BaseModel
from pydantic import ValidationError as PydanticError

from gristmill.authoring import jsonload
from gristmill.server.api.errors import ApiError

JSON = "application/json"
MULTIPART = "multipart/form-data"

Model = TypeVar("Model", bound=BaseModel)


def media_type(request: HttpRequest) -> str:
    """The request's declared media type, lower-cased and without parameters; ``""`` if none."""
    return request.headers.get("Content-Type", "").split(";")[0].strip().lower()


def has_body(request: HttpRequest) -> bool:
    """Whether the request carries a body (a chunked one has its length by now: see
    :class:`gristmill.server.middleware.ChunkedBodyMiddleware`)."""
    return request.META.get("CONTENT_LENGTH", "") not in ("", "0")


def require_media_type(request: HttpRequest, *accepted: str) -> str:
    """The request's media type, which is one of ``accepted`` or, with no body, anything;
    :class:`ApiError` 415 naming the accepted types otherwise."""
    declared = media_type(request)
    if declared in accepted or not has_body(request):
        return declared
    given = f"not {declared}" if declared else "with a Content-Type header"
    raise ApiError(415, f"send the body as {' or '.join(accepted)}, {given}")


def unnamed_file(fields: QueryDict, name: str) -> bool:
    """Whether the form has a file part ``name`` sent without a file name.

    Django files such a part among the text fields. An empty one is what a browser sends for
    a file input left empty, and stands for no file at all; one with content is a file whose
    name is missing.
    """
    return any(value != "" for value in fields.getlist(name))


def json_body(request: HttpRequest, model: type[Model]) -> Model:
    """The request's JSON body as ``model``: 415 if it is not declared ``application/json``,
    400 if it is not JSON, 422 with a message per field if it does not fit ``model``."""
    require_media_type(request, JSON)
    try:
        data = jsonload.loads(request.body) if has_body(request) else {}
    except jsonload.JsonError as error:
        message = f"the body {error.detail}"
        raise ApiError(400, message, {"body": [message]}) from None
    try:
        return model.model_validate(data)
    except PydanticError as error:
        details: dict[str, list[str]] = {}
        for problem in error.errors(include_url=False):
            field = ".".join(str(part) for part in problem["loc"]) or "body"
            details.setdefault(field, []).append(problem["msg"])
        raise ApiError.invalid(details, status=422) from None
