"""One exception tree for gristmill.

::

    GristmillError
    ├── DefinitionError (ValueError)      a pipeline or task is defined wrongly; raised at import
    ├── ConfigurationError                settings are wrong, or an optional extra is missing
    ├── SubmissionError (ValueError)      a run was refused before anything was queued
    ├── NotFoundError (LookupError)       no such pipeline or run (or the caller may not see it)
    ├── SignInRequiredError (PermissionError)  the caller must sign in (or send a token) first
    ├── FetchError                        a URL input could not be fetched (which URL, and why)
    │   └── FetchTooLargeError            ... because it is larger than the input may be
    ├── StoreError                        the database could not do what was asked
    │   └── StoreUnavailableError         ... because it cannot be reached or is full
    └── TaskError                         a task failed, with a message for the end user
        ├── StepTimeoutError (TimeoutError)  a step ran past its time limit
        └── CancelledError                   the run was cancelled while the step ran

Any exception that is not a ``TaskError`` and escapes a task is an *internal error*: the end user
sees a reference id, staff see the traceback.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence


class GristmillError(Exception):
    """Base class of every error gristmill raises on purpose."""


class DefinitionError(GristmillError, ValueError):
    """A pipeline, task or command is defined wrongly.

    Raised when the definition is built (at import time), with the pipeline and step named, so
    that mistakes surface when the server starts rather than when a run reaches the step.
    """

    def __init__(self, message: str, *, pipeline: str | None = None, step: str | None = None):
        where = []
        if pipeline:
            where.append(f"pipeline {pipeline!r}")
        if step:
            where.append(f"step {step!r}")
        prefix = ", ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)
        self.pipeline = pipeline
        self.step = step
        self.detail = message


class ConfigurationError(GristmillError):
    """gristmill is configured wrongly, or an optional dependency is not installed."""


class SubmissionError(GristmillError, ValueError):
    """A run was refused before anything was queued.

    ``errors`` maps a field name (``inputs``, ``params.<name>``, ``pipeline``, or ``__all__``) to
    the messages about it, so that a form or an API client can show each next to its field.
    """

    def __init__(self, errors: Mapping[str, Sequence[str]], *, status: int = 400):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        self.status = status
        summary = "; ".join(
            f"{field}: {message}" for field, messages in self.errors.items() for message in messages
        )
        super().__init__(summary or "submission refused")


class NotFoundError(GristmillError, LookupError):
    """No such pipeline or run, or the caller is not allowed to see it."""


class SignInRequiredError(GristmillError, PermissionError):
    """The caller must sign in (or send a valid API token) to do this."""


class FetchError(GristmillError):
    """A URL could not be fetched; the message is for the user and names the URL.

    ``url`` is the URL as the user gave it (credentials hidden).
    """

    def __init__(self, message: str, *, url: str):
        super().__init__(message)
        self.message = message
        self.url = url


class FetchTooLargeError(FetchError):
    """The file at a URL is larger than the input may be."""


class StoreError(GristmillError):
    """The store (database) could not do what was asked."""


class StoreUnavailableError(StoreError):
    """The store cannot be reached or has no room; nothing was written."""


class TaskError(GristmillError):
    """A task failed; ``message`` is shown to the end user as it is.

    Raise it from a task for any failure the user can act on ("the file is not valid JSON: ...").
    """

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class StepTimeoutError(TaskError, TimeoutError):
    """A step ran past its time limit."""


class CancelledError(TaskError):
    """The run was cancelled while the step was running."""

    def __init__(self, message: str = "the run was cancelled"):
        super().__init__(message)
