"""The API's one error format, the handlers that map exceptions to it, and the API class that
answers in it even where ninja and Django would not (a wrong method, an unknown path).

Every answer that is not a success has the same shape::

    {"error": {"code": "invalid", "message": "one sentence for humans",
               "details": {"params.sample": ["Input should be a valid integer"]}}}

``details`` holds messages by field (a dotted path) and is empty when no field is at fault.
gristmill's exception tree maps to statuses in :mod:`gristmill.server.statuses`, shared with the
pages; anything unexpected is logged with a reference and answered 500 with that reference only,
never a traceback.
"""

from __future__ import annotations

import inspect
import logging
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

from gristmill.errors import (
    InternalErrorRef,
    NotFoundError,
    QuotaError,
    SignInRequiredError,
    SubmissionError,
)
from gristmill.server.api.document import complete
from gristmill.server.statuses import answer_for, code_of

logger = logging.getLogger("gristmill.api")

_SELF_EXPLAINED = frozenset({"__all__", "body", "pipeline", "inputs"})
"""Fields whose messages already say what they are about (no "field: " prefix needed)."""


class ApiError(Exception):
    """An HTTP-level refusal raised by the API's own plumbing (a body that is not JSON or of
    the wrong media type, a bad ``Authorization`` header, a failed CSRF check): status, message
    and per-field details. Refusals of what a request asks for are gristmill's errors
    (:mod:`gristmill.errors`), answered by :data:`~gristmill.server.statuses.STATUSES`."""

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
            "code": code_of(status),
            "message": message,
            "details": {field: list(messages) for field, messages in (details or {}).items()},
        }
    }
    return JsonResponse(body, status=status)


def internal_error(exc: BaseException, what: str) -> InternalErrorRef:
    """Log ``exc`` (with its traceback) under a new reference, and return it."""
    return InternalErrorRef.log(exc, what, logger)


def _api_error(request: HttpRequest, exc: ApiError) -> HttpResponse:
    return error_response(exc.status, exc.message, exc.details)


def _validation(request: HttpRequest, exc: ValidationError) -> HttpResponse:
    details: dict[str, list[str]] = {}
    for problem in exc.errors:
        field = ".".join(str(part) for part in problem.get("loc", ())) or "__all__"
        details.setdefault(field, []).append(str(problem.get("msg", "is not valid")))
    return error_response(422, summarise(details), details)


def _http_error(request: HttpRequest, exc: HttpError) -> HttpResponse:
    return error_response(exc.status_code, exc.message)


def _mapped(request: HttpRequest, exc: Exception) -> HttpResponse:
    """Any other exception, answered with its status from the one map."""
    answered = answer_for(exc, f"{request.method} {request.path}", logger)
    if answered.status >= 500:
        return error_response(answered.status, answered.message)
    if isinstance(exc, QuotaError):
        response = error_response(
            answered.status, exc.message, {f"quota.{exc.quota}": [exc.message]}
        )
        if exc.retry_after is not None:
            response["Retry-After"] = str(exc.retry_after)
        return response
    if isinstance(exc, SubmissionError):
        return error_response(answered.status, summarise(exc.errors), exc.errors)
    return error_response(answered.status, _message(exc) or answered.message)


def _message(exc: Exception) -> str | None:
    # Where the API words a refusal in its own way; None keeps the error's own message.
    if isinstance(exc, NotFoundError | Http404):
        return str(exc) or "there is nothing here"
    if isinstance(exc, SignInRequiredError):
        return f"{exc}; send an API token (Authorization: Bearer ...)"
    if isinstance(exc, RequestDataTooBig):
        return "the request body is larger than this server accepts"
    if isinstance(exc, SuspiciousOperation | MultiPartParserError):
        return f"the request cannot be read: {exc}"
    return None


def install(api: NinjaAPI) -> None:
    """Make ``api`` answer every error in the one format (replacing ninja's defaults): ninja's
    own and :class:`ApiError` with their statuses, everything else by the one map
    (:mod:`gristmill.server.statuses`)."""
    handlers: list[tuple[type[Any], Callable[[HttpRequest, Any], HttpResponse]]] = [
        (ApiError, _api_error),
        (ValidationError, _validation),
        (HttpError, _http_error),
        (Exception, _mapped),
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
