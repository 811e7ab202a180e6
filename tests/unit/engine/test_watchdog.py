"""The watchdog on the memory store: time limits (a cooperative stop, then the hard stop),
heartbeats that keep the lease, and a lost lease or a cancel passed on to the step."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from gristmill.engine.watchdog import UnitReporter, Watchdog
from gristmill.states import RunState, StopReason
from gristmill.store.memory import MemoryStore
from gristmill.store.records import Claim, NewRun, Report
from tests.integration.conftest import wait_until

LEASE = 0.3
"""Short, so that heartbeats (every third of it) come often."""


class HardStops:
    """The hard-stop callback: records each call with whether the step was asked first."""

    def __init__(self) -> None:
        self.calls: list[tuple[Claim, str | None, bool]] = []
        self.called = threading.Event()

    def __call__(self, claim: Claim, reporter: UnitReporter) -> None:
        self.calls.append((claim, reporter.cancel_reason, reporter.is_cancelled()))
        self.called.set()


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def hard_stops() -> HardStops:
    return HardStops()


@pytest.fixture
def watchdog(store: MemoryStore, hard_stops: HardStops) -> Iterator[Watchdog]:
    dog = Watchdog(store, lease=LEASE, kill_grace=0.2, hard_stop=hard_stops)
    yield dog
    dog.stop()


def held(store: MemoryStore, lease: float = LEASE) -> Claim:
    claim = store.create_run(
        NewRun(
            str(uuid.uuid4()),
            "p",
            "default",
            {},
            [],
            datetime.now(UTC),
            claimed_by="w1",
            lease=lease,
        )
    )
    assert claim is not None
    return claim


def test_a_step_past_its_time_limit_is_asked_to_stop_then_stopped_by_force(
    store: MemoryStore, watchdog: Watchdog, hard_stops: HardStops
) -> None:
    claim, reporter = held(store), UnitReporter()
    watchdog.watch(claim, reporter)
    watchdog.step_started(0.1)
    assert hard_stops.called.wait(30)
    assert hard_stops.calls == [(claim, "timeout", True)]


def test_a_step_that_ends_in_time_is_left_alone(
    store: MemoryStore, watchdog: Watchdog, hard_stops: HardStops
) -> None:
    claim, reporter = held(store), UnitReporter()
    watchdog.watch(claim, reporter)
    watchdog.step_started(60)
    reporter.log("working", "log")
    wait_until(lambda: store.read_log(claim.run_id), message="the log line to be flushed")
    watchdog.step_started(None)
    watchdog.unwatch()
    assert (reporter.cancel_reason, hard_stops.calls) == (None, [])


def test_heartbeats_keep_the_lease_and_stop_when_the_unit_is_unwatched(
    store: MemoryStore, hard_stops: HardStops
) -> None:
    lease = 1.0  # heartbeats every third of a second: a loaded machine still makes them
    watchdog = Watchdog(store, lease=lease, kill_grace=0.2, hard_stop=hard_stops)
    try:
        claim, reporter = held(store, lease), UnitReporter()
        watchdog.watch(claim, reporter)
        two_leases = time.time() + 2 * lease
        wait_until(lambda: time.time() > two_leases, message="two leases to pass")
        assert store.reap() == 0
        assert store.get_run(claim.run_id).state == RunState.RUNNING
        watchdog.unwatch()
        two_leases = time.time() + 2 * lease
        wait_until(lambda: time.time() > two_leases, message="two leases to pass")
        assert store.reap() == 1
        assert store.get_run(claim.run_id).state == RunState.QUEUED
    finally:
        watchdog.stop()


def test_a_lease_taken_over_tells_the_step_to_stop(store: MemoryStore, watchdog: Watchdog) -> None:
    claim, reporter = held(store), UnitReporter()
    assert store.release(claim, Report())
    assert store.claim("w2", queues=None, lease=30, run_id=claim.run_id)
    watchdog.watch(claim, reporter)
    wait_until(reporter.is_cancelled, message="the watchdog to notice")
    assert reporter.cancel_reason == StopReason.LOST


def test_a_cancel_request_reaches_the_step(store: MemoryStore, watchdog: Watchdog) -> None:
    claim, reporter = held(store), UnitReporter()
    watchdog.watch(claim, reporter)
    assert store.request_cancel(claim.run_id)
    wait_until(reporter.is_cancelled, message="the watchdog to notice")
    assert reporter.cancel_reason == StopReason.CANCELLED


def test_draining_asks_the_running_step_to_stop(
    store: MemoryStore, watchdog: Watchdog, hard_stops: HardStops
) -> None:
    claim, reporter = held(store, lease=30), UnitReporter()
    watchdog.watch(claim, reporter)
    watchdog.drain(0)
    assert hard_stops.called.wait(30)
    assert hard_stops.calls == [(claim, "drain", True)]
