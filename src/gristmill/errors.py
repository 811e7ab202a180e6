"""One exception tree for gristmill.

::

    GristmillError
    ├── DefinitionError (ValueError)      a pipeline or task is defined wrongly; raised at import
    ├── ConfigurationError                settings are wrong, or an optional extra is missing
    │   └── PipelineFileError             a YAML pipeline file is wrong (file, line, field each)
    ├── SubmissionError (ValueError)      a run was refused before anything was queued
    │   ├── SubmissionTooLargeError       ... because an input is larger than the pipeline takes
    │   ├── PipelineNotFoundError (NotFoundError)  ... because no such pipeline is offered
    │   └── QuotaError                    ... because the submitter is at a quota of runs
    │       └── StorageQuotaError         ... or at its storage quota
    ├── NotFoundError (LookupError)       no such pipeline or run (or the caller may not see it)
    ├── SignInRequiredError (PermissionError)  the caller must sign in (or send a token) first
    ├── PermissionDeniedError (PermissionError)  the caller may not do this, signed in or not
    ├── ConflictError                     the run's state does not allow the action (its state)
    ├── TooLargeError (ValueError)        a file was larger than its limit; nothing was kept
    ├── FetchError                        a URL input could not be fetched (which URL, and why)
    │   └── FetchTooLargeError            ... because it is larger than the input may be
    ├── StoreError                        the database could not do what was asked
    │   ├── StoreUnavailableError         ... because it cannot be reached or is full
    │   ├── TransitionError               ... because the states table forbids that move
    │   └── QuotaExceededError            ... because the run would pass its submitter's quota
    └── TaskError                         a task failed, with a message for the end user
        ├── StepTimeoutError (TimeoutError)  a step ran past its time limit
        ├── CancelledError                   the run was cancelled while the step ran
        └── JsonError (ValueError)           JSON a user sent cannot be read (line and column)

Any exception that is not a ``TaskError`` and escapes a task is an *internal error*: the end user
sees a reference id, staff see the traceback. :meth:`InternalErrorRef.log` is the one place that
makes such a reference and the message that shows it.

No error here knows an HTTP status: the server maps the tree to statuses in one place
(:mod:`gristmill.server.statuses`).
"""

from __future__ import annotations

import logging
import traceback
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # states.py builds on this module
    from gristmill.states import RunState


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


class PipelineFileError(ConfigurationError):
    """A YAML pipeline file cannot be read or describes no valid pipeline.

    ``problems`` holds one message per mistake, each naming the file, the line (and column) and
    the field, e.g. ``tools.yaml, line 12, column 14: steps.2.timeout: must be a number of
    seconds``; the error's text is all of them, one a line.
    """

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


class SubmissionError(GristmillError, ValueError):
    """A run was refused before anything was queued.

    ``errors`` maps a field name (``inputs``, ``params.<name>``, ``pipeline``, or ``__all__``) to
    the messages about it, so that a form or an API client can show each next to its field.
    """

    def __init__(self, errors: Mapping[str, Sequence[str]]):
        self.errors = {field: list(messages) for field, messages in errors.items()}
        summary = "; ".join(
            f"{field}: {message}" for field, messages in self.errors.items() for message in messages
        )
        super().__init__(summary or "submission refused")


class SubmissionTooLargeError(SubmissionError):
    """An input is larger than the pipeline's size limit; its message is under ``inputs``."""


class QuotaError(SubmissionError):
    """A run was refused because its submitter is at a quota of runs (concurrent, or per
    day); nothing was stored. The message (under ``__all__``) names the quota, the usage and
    when it frees up; ``retry_after`` is how many seconds to wait before trying again."""

    def __init__(self, quota: str, message: str, retry_after: int | None = None):
        super().__init__({"__all__": [message]})
        self.quota = quota
        self.message = message
        self.retry_after = retry_after


class StorageQuotaError(QuotaError):
    """A run was refused because its inputs would take its submitter past their storage
    quota; nothing was stored."""


class NotFoundError(GristmillError, LookupError):
    """No such pipeline or run, or the caller is not allowed to see it."""


class PipelineNotFoundError(SubmissionError, NotFoundError):
    """The submission names a pipeline that is not offered (to this caller); its message is
    under ``pipeline``."""


class SignInRequiredError(GristmillError, PermissionError):
    """The caller must sign in (or send a valid API token) to do this."""


class PermissionDeniedError(GristmillError, PermissionError):
    """The caller may see the run but not do this to it (pin another user's run, accept a
    stale result without being staff); the message says who may."""


class ConflictError(GristmillError):
    """The action does not fit the state of what it acts on (cancel an ended run, delete a
    running one); the message says why and what to do. ``state`` is the run's state when it
    was refused, if the refusal is about the run's state."""

    def __init__(self, message: str, *, state: RunState | None = None):
        super().__init__(message)
        self.message = message
        self.state = state


class TooLargeError(GristmillError, ValueError):
    """A stream was longer than its limit, ``max_size`` bytes; nothing of it was kept.

    ``name`` is the file's name. Callers that know which limit it was (a pipeline's, the data
    files') say so to the user in their own words."""

    def __init__(self, name: str, *, max_size: int):
        super().__init__(f"{name} is larger than the limit of {max_size} bytes")
        self.name = name
        self.max_size = max_size


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


class QuotaExceededError(StoreError):
    """Storing the run(s) would take their submitter past a quota; nothing was stored (the
    submission layer words it as a :class:`QuotaError`)."""


class TransitionError(StoreError):
    """A store was asked to make a move the transition table of :mod:`gristmill.states`
    forbids (a bug in the caller, not a race: races end in a ``False`` result, a forbidden move
    always fails)."""

    def __init__(self, current: RunState, new: RunState):
        super().__init__(f"a run cannot go from {current.value} to {new.value}")
        self.current = current
        self.new = new


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


class JsonError(TaskError, ValueError):
    """JSON that cannot be read (:mod:`gristmill.authoring.jsonload`). ``detail`` says why, as a
    predicate of the data ("is not valid JSON: Expecting value: line 1 column 1 (char 0)", "is
    nested too deeply to read: ..."); the message puts the data's name before it."""

    def __init__(self, detail: str, name: str = "the data"):
        super().__init__(f"{name} {detail}")
        self.detail = detail


@dataclass(frozen=True)
class InternalErrorRef:
    """An unexpected error, logged with its traceback under a new reference.

    The user sees :attr:`message`, which names the reference and nothing else; staff find the
    traceback in the log under the reference (and, for a run, in the run's stored error).
    Everything that records or shows an internal error makes it with :meth:`log` and
    recognises it by this type (or, for a run, by its stored reference), never by its text.
    """

    reference: str
    traceback: str

    @classmethod
    def log(cls, error: BaseException, where: str, logger: logging.Logger) -> InternalErrorRef:
        """Log ``error`` with its traceback on ``logger`` as "``where`` failed (reference
        ...)", and return its reference."""
        reference = uuid.uuid4().hex[:12]
        logger.error("%s failed (reference %s)", where, reference, exc_info=error)
        return cls(reference, "".join(traceback.format_exception(error)))

    @property
    def message(self) -> str:
        """What the user is told: ``internal error, reference <reference>``."""
        return f"internal error, reference {self.reference}"

    def shown(self) -> dict[str, str]:
        """What a result shows in place of a context that could not be built."""
        return {"error": self.message}
