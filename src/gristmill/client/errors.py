"""What the client raises: one exception per error code of the API's error format.

::

    ClientError                      anything the client raises
    ├── ServerUnreachableError       no answer: the address is wrong, or the server is down
    ├── WaitTimeoutError             also TimeoutError: a run did not end within the wait
    └── ResponseError                the server answered {"error": {code, message, details}}
        ├── InvalidError                400 invalid (and 422)
        ├── UnauthenticatedError        401 unauthenticated
        ├── ForbiddenError              403 forbidden
        ├── NotFoundError               404 not_found
        ├── MethodNotAllowedError       405 method_not_allowed
        ├── TooSlowError                408 too_slow
        ├── ConflictError               409 conflict
        ├── TooLargeError               413 too_large
        ├── UnsupportedMediaTypeError   415 unsupported_media_type
        ├── ThrottledError              429 throttled
        ├── InternalError               500 internal
        ├── UnavailableError            503 unavailable
        └── InsufficientStorageError    507 insufficient_storage

These are HTTP-level, like the server's ``ApiError``, so they live here and not in
``gristmill.errors``.
"""

from __future__ import annotations

from typing import Any

import httpx


class ClientError(Exception):
    """Anything ``gristmill.client`` raises; ``message`` is written for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ServerUnreachableError(ClientError):
    """The server could not be reached (refused, unknown host, dropped connection)."""


class WaitTimeoutError(ClientError, TimeoutError):
    """``wait`` gave up: the run had not ended within the timeout. ``status`` is its last."""

    def __init__(self, message: str, status: dict[str, Any]) -> None:
        super().__init__(message)
        self.status = status


class ResponseError(ClientError):
    """The server answered an error. ``status`` is the HTTP status, ``code`` the API's error
    code (``None`` if the answer was not in the API's error format), ``details`` maps each
    field at fault to its messages (empty when no field is)."""

    code: str | None = None

    def __init__(
        self,
        message: str,
        status: int,
        code: str | None = None,
        details: dict[str, list[str]] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.details = details or {}


class InvalidError(ResponseError):
    """400 (or 422): the request was refused; ``details`` says which field and why."""


class UnauthenticatedError(ResponseError):
    """401: sign in (a token in ``GRISTMILL_TOKEN``), or the token given is not valid."""


class ForbiddenError(ResponseError):
    """403: the caller may not do this."""


class NotFoundError(ResponseError):
    """404: no such pipeline, run, data file or token (or one the caller may not see)."""


class MethodNotAllowedError(ResponseError):
    """405: the path does not take this method."""


class TooSlowError(ResponseError):
    """408: the request came too slowly and the server closed the connection."""


class ConflictError(ResponseError):
    """409: not in a state that allows it (cancel an ended run, delete a running one)."""


class TooLargeError(ResponseError):
    """413: the upload is over the server's limit."""


class UnsupportedMediaTypeError(ResponseError):
    """415: the body was neither JSON nor multipart."""


class ThrottledError(ResponseError):
    """429: this address is sending too many bodies at once; try again later."""


class InternalError(ResponseError):
    """500: the server failed; its log has the traceback under the reference in ``message``."""


class UnavailableError(ResponseError):
    """503: the server's database is unavailable; try again in a moment."""


class InsufficientStorageError(ResponseError):
    """507: the server's disk is full."""


BY_CODE: dict[str, type[ResponseError]] = {
    "invalid": InvalidError,
    "unauthenticated": UnauthenticatedError,
    "forbidden": ForbiddenError,
    "not_found": NotFoundError,
    "method_not_allowed": MethodNotAllowedError,
    "too_slow": TooSlowError,
    "conflict": ConflictError,
    "too_large": TooLargeError,
    "unsupported_media_type": UnsupportedMediaTypeError,
    "throttled": ThrottledError,
    "internal": InternalError,
    "unavailable": UnavailableError,
    "insufficient_storage": InsufficientStorageError,
}


def error_from(answer: httpx.Response) -> ResponseError:
    """The exception for an answer that is not a success (its body must have been read)."""
    try:
        error = answer.json()["error"]
        code, message = str(error["code"]), str(error["message"])
        details = {str(k): [str(m) for m in v] for k, v in (error.get("details") or {}).items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        text = answer.text[:200]
        return ResponseError(
            f"the server answered {answer.status_code}: {text}", answer.status_code
        )
    return BY_CODE.get(code, ResponseError)(message, answer.status_code, code, details)
