"""The outage tracker every long-lived loop uses: backoff, and one log line each way."""

from __future__ import annotations

import logging

import pytest

from gristmill.engine.outage import Outage
from gristmill.engine.watchdog import UnitReporter
from gristmill.errors import StoreUnavailableError

LOGGER = logging.getLogger("tests.outage")


def _lost(text: str = "server closed the connection unexpectedly") -> StoreUnavailableError:
    try:
        raise StoreUnavailableError(f"the database is unavailable: {text}") from OSError(
            f"{text}\n\tThis probably means the server terminated abnormally"
        )
    except StoreUnavailableError as error:
        return error


def test_waits_double_from_the_first_delay_up_to_the_cap_with_jitter() -> None:
    outage = Outage(LOGGER, first_delay=0.1, max_delay=2.0)
    delays = [outage.failed(_lost()) for _ in range(8)]
    caps = [0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0, 2.0]
    assert all(cap / 2 <= delay <= cap for delay, cap in zip(delays, caps, strict=True))


def test_an_outage_is_logged_once_with_its_cause_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        for _ in range(5):
            outage.failed(_lost())
        assert outage.down
        outage.recovered()
        outage.recovered()
    assert not outage.down
    messages = [record.getMessage() for record in caplog.records]
    assert messages[0] == (
        "database unavailable: server closed the connection unexpectedly; retrying"
    )
    assert messages[1].startswith("database back after ")
    assert messages[1].endswith(" s")
    assert len(messages) == 2


def test_a_stale_connection_failing_right_after_recovery_is_the_same_outage(
    caplog: pytest.LogCaptureFixture,
) -> None:
    outage = Outage(LOGGER)
    with caplog.at_level(logging.WARNING, logger=LOGGER.name):
        outage.failed(_lost())
        outage.recovered()
        outage.failed(_lost("terminating connection due to administrator command"))
        outage.recovered()
    assert len(caplog.records) == 2


def test_a_new_outage_starts_again_from_the_first_delay() -> None:
    outage = Outage(LOGGER, first_delay=0.1, max_delay=2.0)
    for _ in range(6):
        outage.failed(_lost())
    outage.recovered()
    assert outage.back_for() is not None
    assert outage.failed(_lost()) <= 0.1


def test_a_database_not_yet_seen_back_has_been_back_for_no_time() -> None:
    # A worker's first success after an outage may be its reap, before it records the
    # recovery: the leases that ran out meanwhile must still get their lease to be renewed.
    outage = Outage(LOGGER)
    outage.failed(_lost())
    assert outage.back_for() == 0.0
    outage.recovered()
    back = outage.back_for()
    assert back is not None and back < 1.0


def test_the_time_since_the_database_came_back_is_unknown_until_it_was_lost() -> None:
    outage = Outage(LOGGER)
    outage.recovered()
    assert outage.back_for() is None


def test_log_lines_that_could_not_be_written_are_written_later_in_order() -> None:
    reporter = UnitReporter()
    reporter.log("one", "stdout")
    taken = reporter.take()
    reporter.log("two", "stdout")
    reporter.restore(taken)
    assert reporter.dirty
    assert [text for _, _, _, text in reporter.take().logs] == ["one", "two"]
