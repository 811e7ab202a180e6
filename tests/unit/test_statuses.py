"""The one map from exceptions to HTTP statuses, shared by the API and the pages."""

from __future__ import annotations

import errno
import logging

import pytest
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404

from gristmill.errors import (
    ConflictError,
    GristmillError,
    PipelineNotFoundError,
    StoreUnavailableError,
    SubmissionError,
    SubmissionTooLargeError,
    TaskError,
)
from gristmill.server.statuses import (
    CODES,
    NO_ROOM_MESSAGE,
    STATUSES,
    UNAVAILABLE_MESSAGE,
    Answer,
    answer_for,
    status_of,
)
from tests.unit.test_errors import tree

logger = logging.getLogger("gristmill.tests")


def test_every_class_of_the_tree_is_mapped_to_a_status_with_a_code() -> None:
    unmapped = [kind.__name__ for kind in tree() if kind not in STATUSES]
    assert unmapped == []
    assert all(status in CODES for status in STATUSES.values())


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SubmissionError({"params.x": ["is required"]}), 400),
        (SubmissionTooLargeError({"inputs": ["a.csv is larger than 1 MB"]}), 413),
        (PipelineNotFoundError({"pipeline": ["no pipeline named 'x'"]}), 404),
        (ConflictError("the run is still running"), 409),
        (StoreUnavailableError("connection refused"), 503),
        (Http404(), 404),
        (RequestDataTooBig(), 413),
        (SuspiciousOperation("bad"), 400),
        (TaskError("a task's error reaching a request is a bug"), 500),
        (RuntimeError("unexpected"), 500),
        (OSError(errno.ENOSPC, "No space left on device"), 507),
        (OSError(errno.EDQUOT, "Disk quota exceeded"), 507),
        (OSError(errno.EACCES, "Permission denied"), 500),
    ],
)
def test_each_error_has_its_status(error: BaseException, status: int) -> None:
    assert status_of(error) == status


def test_a_subclass_not_listed_takes_its_nearest_ancestors_status() -> None:
    class RunLockedError(ConflictError):
        pass

    class PluginError(GristmillError):
        pass

    assert status_of(RunLockedError("the run is locked")) == 409
    assert status_of(PluginError("broken")) == 500


def test_a_refusal_is_answered_with_its_own_message_and_nothing_is_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    refusal = ConflictError("the run has already ended (succeeded); there is nothing to cancel")
    with caplog.at_level(logging.DEBUG, logger="gristmill.tests"):
        answered = answer_for(refusal, "POST /runs/r1/cancel", logger)
    assert answered == Answer(409, "conflict", str(refusal))
    assert not answered.internal
    assert caplog.records == []


def test_an_unexpected_error_is_answered_with_the_reference_it_was_logged_under(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.ERROR, logger="gristmill.tests"):
        answered = answer_for(RuntimeError("the disk caught fire"), "GET /runs/r1/log", logger)
    (record,) = caplog.records
    reference = record.getMessage().rsplit(" ", 1)[-1].rstrip(")")
    assert record.getMessage() == f"GET /runs/r1/log failed (reference {reference})"
    assert answered == Answer(500, "internal", f"internal error, reference {reference}")
    assert answered.internal


def test_an_outage_is_answered_503_and_logged_as_one_line_without_a_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = StoreUnavailableError("could not connect: connection refused")
    with caplog.at_level(logging.DEBUG, logger="gristmill.tests"):
        answered = answer_for(outage, "GET /runs/r1", logger)
    (record,) = caplog.records
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert record.getMessage().startswith("GET /runs/r1 refused: ")
    assert answered == Answer(503, "unavailable", UNAVAILABLE_MESSAGE)
    assert UNAVAILABLE_MESSAGE == "the database is unavailable; try again in a moment"


def test_a_full_disk_is_answered_507_and_its_traceback_logged_for_staff(
    caplog: pytest.LogCaptureFixture,
) -> None:
    full = OSError(errno.ENOSPC, "No space left on device")
    with caplog.at_level(logging.ERROR, logger="gristmill.tests"):
        answered = answer_for(full, "POST /api/v1/pipelines/p/runs", logger)
    (record,) = caplog.records
    assert record.exc_info is not None and record.exc_info[1] is full
    assert answered == Answer(507, "insufficient_storage", NO_ROOM_MESSAGE)
    assert NO_ROOM_MESSAGE == "the server has no room to store this; try again later"
