"""The API's one error format, the handlers that map exceptions to it, and the API class that
answers in it even where ninja and Django would not (a wrong method, an unknown path).

Every answer that is not a success has the same shape::

    {"error": {"code": "invalid", "message": "one sentence for humans",
               "details": {"params.sample": ["Input should be a valid integer"]}}}

``details`` holds messages by field (a dotted path) and is empty when no field is at fault.
gristmill's exception tree maps to statuses here and nowhere else; anything unexpected is
logged with a reference and answered 500 with that reference only, never a traceback.
"""

from __future__ import annotations

import errno
import inspect
import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBase,
    HttpResponseNotAllowed,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.urls import URLPattern, URLResolver, re_path
from ninja import NinjaAPI
from ninja.errors import HttpError, ValidationError
from ninja.openapi.schema import OpenAPISchema

from gristmill.engine.outage import describe
from gristmill.errors import (
    NotFoundError,
    SignInRequiredError,
    StoreUnavailableError,
    SubmissionError,
)
from gristmill.server.api.document import complete

logger = logging.getLogger("gristmill.api")

CODES = {
    400: "invalid",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    408: "too_slow",
    409: "conflict",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    429: "throttled",
    500: "internal",
    503: "unavailable",
    507: "insufficient_storage",
}
"""The error code of each status (the code names the kind of problem; the status agrees)."""

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)
_SELF_EXPLAINED = frozenset({"__all__", "body", "pipeline", "inputs"})
"""Fields whose messages already say what they are about (no "field: " prefix needed)."""


class ApiError(Exception):
    """An answer other than success, raised by a view: status, message and per-field details."""

    def __init__(
        self, status: int, message: str, details: Mapping[str, Sequence[str]] | None = None
    ):
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = {field: list(messages) for field, messages in (details or {}).items()}

    @classmethod
    def invalid(cls, details: Mapping[str, Sequence[str]], status: int = 400) -> ApiError:
        """A refusal of bad input, summarised from its per-field ``details``."""
        return cls(status, summarise(details), details)


def summarise(details: Mapping[str, Sequence[str]]) -> str:
    """One sentence for a set of per-field messages: the one message, naming its field, or a
    count of the problems."""
    problems = [(field, message) for field, messages in details.items() for message in messages]
    if not problems:
        return "the request was refused"
    if len(problems) > 1:
        return f"the request has {len(problems)} problems; see details"
    field, message = problems[0]
    return message if field in _SELF_EXPLAINED else f"{field}: {message}"


def error_response(
    status: int, message: str, details: Mapping[str, Sequence[str]] | None = None
) -> JsonResponse:
    """The error answer with ``status``, in the one format."""
    body = {
        "error": {
            "code": CODES.get(status, "invalid" if status < 500 else "internal"),
            "message": message,
            "details": {field: list(messages) for field, messages in (details or {}).items()},
        }
    }
    return JsonResponse(body, status=status)


def internal_error(exc: BaseException, what: str) -> str:
    """Log ``exc`` (with its traceback) under a new reference, and return the reference."""
    reference = uuid.uuid4().hex[:12]
    logger.error("%s failed (reference %s)", what, reference, exc_info=exc)
    return reference


def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.message, exc.details)


def _submission(request: HttpRequest, exc: SubmissionError) -> HttpResponse:
    return error_response(exc.status, summarise(exc.errors), exc.errors)


def _not_found(request: HttpRequest, exc: NotFoundError | Http404) -> HttpResponse:
    return error_response(404, str(exc) or "there is nothing here")


def _sign_in(request: HttpRequest, exc: SignInRequiredError) -> HttpResponse:
    return error_response(401, f"{exc}; send an API token (Authorization: Bearer ...)")


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details: dict[str, list[str]] = {}
    for problem in exc.errors:
        field = ".".join(str(part) for part in problem.get("loc", ())) or "__all__"
        details.setdefault(field, []).append(str(problem.get("msg", "is not valid")))
    return error_response(422, summarise(details), details)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, exc.message)


def _unavailable(request: HttpRequest, exc: StoreUnavailableError) -> HttpResponse:
    # An outage is not a bug: one line says why, without a traceback per refused request.
    logger.warning("%s %s refused: %s", request.method, request.path, describe(exc))
    return error_response(503, "the database is unavailable; try again in a moment")


def _too_big(request: HttpRequest, exc: RequestDataTooBig) -> HttpResponse:
    return error_response(413, "the request body is larger than this server accepts")


def _bad_request(
    request: HttpRequest, exc: SuspiciousOperation | MultiPartParserError
) -> HttpResponse:
    return error_response(400, f"the request cannot be read: {exc}")


def _unexpected(request: HttpRequest, exc: Exception) -> HttpResponse:
    if isinstance(exc, OSError) and exc.errno in _NO_ROOM:
        internal_error(exc, f"{request.method} {request.path}")
        return error_response(507, "the server has no room to store this; try again later")
    reference = internal_error(exc, f"{request.method} {request.path}")
    return error_response(500, f"internal error, reference {reference}")


def install(api: NinjaAPI) -> None:
    """Make ``api`` answer every error in the one format (replacing ninja's defaults)."""
    handlers: list[tuple[type[Any], Callable[[HttpRequest, Any], HttpResponse]]] = [
        (ApiError, _api_error),
        (SubmissionError, _submission),
        (NotFoundError, _not_found),
        (SignInRequiredError, _sign_in),
        (Http404, _not_found),
        (ValidationError, _validation),
        (HttpError, _http_error),
        (StoreUnavailableError, _unavailable),
        (RequestDataTooBig, _too_big),
        (SuspiciousOperation, _bad_request),
        (MultiPartParserError, _bad_request),
        (Exception, _unexpected),
    ]
    for exc_class, handler in handlers:
        api.add_exception_handler(exc_class, handler)


View = Callable[..., HttpResponseBase]


class ErrorFormatAPI(NinjaAPI):
    """A :class:`~ninja.NinjaAPI` that answers every error in the one format: its exception
    handlers are :func:`install`'s, a method a path does not take is a JSON 405 (ninja answers
    plain text), and an unknown path under the API a JSON 404 (Django answers HTML)."""

    def set_default_exception_handlers(self) -> None:
        install(self)

    def get_openapi_schema(
        self, *, path_prefix: str | None = None, path_params: dict[str, Any] | None = None
    ) -> OpenAPISchema:
        """ninja's document, with what every operation answers besides its view's own (see
        :mod:`gristmill.server.api.document`)."""
        schema = super().get_openapi_schema(path_prefix=path_prefix, path_params=path_params)
        complete(schema)
        return schema

    @property
    def urls(self) -> tuple[list[URLResolver | URLPattern], str, str]:
        patterns, app_name, namespace = super().urls
        for pattern in patterns:
            if isinstance(pattern, URLPattern):
                pattern.callback = _in_error_format(pattern.callback)
        # Any path at all, even one with an encoded newline in it (`.` alone stops at one).
        fallback = re_path(r"^[\s\S]*$", _in_error_format(_no_endpoint), name="not-found")
        return [*patterns, fallback], app_name, namespace


def _no_endpoint(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
    raise Http404()


def _in_error_format(view: View) -> View:
    if inspect.iscoroutinefunction(view) or getattr(view, "in_error_format", False):
        return view

    def answer(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        try:
            response = view(request, *args, **kwargs)
        except Http404:  # raised outside ninja's operations: the API root, unknown paths
            return error_response(404, f"there is no API endpoint at {request.path}")
        if isinstance(response, HttpResponseNotAllowed):
            allowed = response["Allow"]
            refusal = error_response(405, f"{request.method} is not allowed here; use {allowed}")
            refusal["Allow"] = allowed
            return refusal
        return response

    answer.in_error_format = True  # type: ignore[attr-defined]
    answer.csrf_exempt = getattr(view, "csrf_exempt", False)  # type: ignore[attr-defined]
    return answer
