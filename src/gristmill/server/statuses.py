"""The one map from exceptions to HTTP answers, shared by the REST API and the pages.

gristmill's errors (:mod:`gristmill.errors`) know nothing of HTTP; here each class of the tree,
and each of Django's exceptions that a request can meet, gets its status, and each status its
error code (the ``code`` of the API's error format). An exception is answered with the status
of the nearest class in its ancestry that is mapped; anything unmapped is an internal error
(500), answered with a reference only. A disk or quota that is full is 507 whatever raised it.

The API (:mod:`gristmill.server.api.errors`) and the pages
(:func:`gristmill.server.web.views.pages`) both answer with :func:`answer_for`; only the wording
around some messages differs between them (the API explains how to send a token where a page
redirects to the sign-in page, say).
"""

from __future__ import annotations

import errno
import logging
from dataclasses import dataclass

from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.http import Http404
from django.http.multipartparser import MultiPartParserError

from gristmill.engine.outage import describe
from gristmill.errors import (
    CancelledError,
    ConfigurationError,
    ConflictError,
    DefinitionError,
    FetchError,
    FetchTooLargeError,
    GristmillError,
    InternalErrorRef,
    JsonError,
    NotFoundError,
    PermissionDeniedError,
    PipelineFileError,
    PipelineNotFoundError,
    QuotaError,
    QuotaExceededError,
    SignInRequiredError,
    StepTimeoutError,
    StorageQuotaError,
    StoreError,
    StoreUnavailableError,
    SubmissionError,
    SubmissionTooLargeError,
    TaskError,
    TooLargeError,
    TransitionError,
)

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

STATUSES: dict[type[BaseException], int] = {
    # Every class of gristmill's tree. A bug (a definition, a setting, a task's own error
    # reaching a request) is an internal error; a refusal of what the caller asked is a 4xx.
    GristmillError: 500,
    DefinitionError: 500,
    ConfigurationError: 500,
    PipelineFileError: 500,  # a pipeline file with mistakes: the server's configuration
    SubmissionError: 400,
    SubmissionTooLargeError: 413,
    QuotaError: 429,
    StorageQuotaError: 413,
    PipelineNotFoundError: 404,
    NotFoundError: 404,
    SignInRequiredError: 401,
    PermissionDeniedError: 403,
    ConflictError: 409,
    TooLargeError: 413,
    FetchError: 400,
    FetchTooLargeError: 413,
    StoreError: 500,
    StoreUnavailableError: 503,
    QuotaExceededError: 429,  # the store's refusal, worded as a QuotaError where submitted
    TransitionError: 500,  # a bug in the caller: an internal error with a reference
    TaskError: 500,
    StepTimeoutError: 500,
    CancelledError: 500,
    JsonError: 400,
    # Django's, raised while it reads a request or by a view.
    Http404: 404,
    PermissionDenied: 403,
    RequestDataTooBig: 413,
    SuspiciousOperation: 400,
    MultiPartParserError: 400,
}
"""The HTTP status of each exception class; a subclass not listed takes its nearest
ancestor's."""

UNAVAILABLE_MESSAGE = "the database is unavailable; try again in a moment"
"""What the user is told while the database cannot be reached (503)."""
NO_ROOM_MESSAGE = "the server has no room to store this; try again later"
"""What the user is told when a disk or quota is full (507)."""

_NO_ROOM = (errno.ENOSPC, errno.EDQUOT)


@dataclass(frozen=True)
class Answer:
    """How a request that met an exception is answered."""

    status: int
    code: str
    """The error code of :attr:`status` (:func:`code_of`)."""
    message: str
    """For the user: the reference of an internal error, a fixed sentence for an outage or a
    full disk, the exception's own message otherwise."""

    @property
    def internal(self) -> bool:
        """Whether this is an internal error, whose reference is all the user is shown."""
        return self.status == 500


def code_of(status: int) -> str:
    """The error code of ``status``: :data:`CODES`, else ``invalid`` for any other 4xx and
    ``internal`` for any other 5xx."""
    return CODES.get(status, "invalid" if status < 500 else "internal")


def status_of(error: BaseException) -> int:
    """The status ``error`` is answered with (see the module's docstring)."""
    if isinstance(error, OSError) and error.errno in _NO_ROOM:
        return 507
    return next((STATUSES[kind] for kind in type(error).__mro__ if kind in STATUSES), 500)


def answer_for(error: BaseException, what: str, logger: logging.Logger) -> Answer:
    """The answer to ``what`` (a request, say ``GET /runs/x``) that met ``error``, having
    logged on ``logger`` what staff need: an internal error or a full disk with its traceback
    under a reference (:class:`~gristmill.errors.InternalErrorRef`), an outage as one line."""
    status = status_of(error)
    if status == 500:
        message = InternalErrorRef.log(error, what, logger).message
    elif isinstance(error, StoreUnavailableError):
        # An outage is not a bug: one line says why, without a traceback per refused request.
        logger.warning("%s refused: %s", what, describe(error))
        message = UNAVAILABLE_MESSAGE
    elif status == 507:
        InternalErrorRef.log(error, what, logger)
        message = NO_ROOM_MESSAGE
    else:
        message = str(error)
    return Answer(status, code_of(status), message)
