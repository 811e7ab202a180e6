"""Reference data: loaded once per process, reloaded after its time to live, safe under threads.

Threads synchronise on events and conditions; time is an injected clock moved by hand.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest

import gristmill
from gristmill.authoring.references import Reference, clear_references, reference

WAIT = 10.0  # seconds before a test gives up on a thread (never reached when it passes)


class Clock:
    """A clock moved by hand, which counts how often it was read."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.reads = 0
        self.changed = threading.Condition()

    def __call__(self) -> float:
        with self.changed:
            self.reads += 1
            self.changed.notify_all()
            return self.now

    def wait_for_reads(self, count: int) -> None:
        with self.changed:
            assert self.changed.wait_for(lambda: self.reads >= count, WAIT)


class Loader:
    """Returns 1, 2, 3... on successive calls; can be made to block or fail."""

    def __init__(self) -> None:
        self.calls = 0
        self.entered = threading.Event()
        self.gate: Callable[[], None] | None = None
        self.error: Exception | None = None

    def __call__(self) -> int:
        self.calls += 1
        self.entered.set()
        if self.gate is not None:
            self.gate()
        if self.error is not None:
            raise self.error
        return self.calls


def make(loader: Loader, clock: Clock, **options: float) -> Reference[int]:
    return reference("codelists", loader, ttl=100, clock=clock, **options)


def test_the_first_call_loads_and_later_calls_serve_the_loaded_value() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)

    assert [codelists() for _ in range(5)] == [1, 1, 1, 1, 1]
    assert loader.calls == 1


def test_the_value_is_reloaded_once_its_time_to_live_has_passed() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)
    assert codelists() == 1

    clock.now += 99
    assert codelists() == 1
    clock.now += 1
    assert codelists() == 2
    assert loader.calls == 2


def test_threads_asking_before_the_first_load_wait_for_one_load() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)
    threads = 8
    # The loader holds on until every thread has looked at the clock, that is, has seen that
    # there is no value yet: a cache without a lock would then load once per thread.
    loader.gate = lambda: clock.wait_for_reads(threads)
    values: list[int] = []
    workers = [threading.Thread(target=lambda: values.append(codelists())) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(WAIT)

    assert values == [1] * threads
    assert loader.calls == 1


def test_while_one_thread_reloads_the_others_get_the_old_value() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)
    assert codelists() == 1
    clock.now += 100
    release = threading.Event()
    loader.gate = lambda: release.wait(WAIT) and None
    reloaded: list[int] = []
    reloader = threading.Thread(target=lambda: reloaded.append(codelists()))
    reloader.start()
    assert loader.entered.wait(WAIT)
    loader.entered.clear()

    assert codelists() == 1  # not blocked behind the reload
    release.set()
    reloader.join(WAIT)
    assert reloaded == [2]
    assert codelists() == 2
    assert loader.calls == 2


def test_a_failed_reload_is_logged_and_the_old_value_served_until_max_stale(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock, max_stale=50, retry=10)
    assert codelists() == 1
    loader.error = OSError("codelist server down")
    clock.now += 100

    with caplog.at_level(logging.WARNING, logger="gristmill.references"):
        assert codelists() == 1
    assert "reference 'codelists' could not be reloaded (OSError: codelist server down)" in (
        caplog.text
    )
    assert loader.calls == 2

    clock.now += 5
    assert codelists() == 1  # within the retry interval: no new attempt
    assert loader.calls == 2
    clock.now += 5
    assert codelists() == 1  # tried again, failed again
    assert loader.calls == 3

    clock.now += 40  # 150 s after loading: past ttl + max_stale
    with pytest.raises(OSError, match="codelist server down"):
        codelists()


def test_a_reload_that_succeeds_after_failures_serves_the_new_value() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock, retry=10)
    codelists()
    loader.error = OSError("down")
    clock.now += 100
    assert codelists() == 1
    loader.error = None
    clock.now += 10

    assert codelists() == 3


def test_a_failed_first_load_raises_and_the_next_call_tries_again() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)
    loader.error = gristmill.TaskError("the codelists could not be fetched")

    with pytest.raises(gristmill.TaskError, match="could not be fetched"):
        codelists()
    loader.error = None
    assert codelists() == 2


def test_clear_forgets_the_value() -> None:
    loader, clock = Loader(), Clock()
    codelists = make(loader, clock)
    other = reference("schemas", Loader(), ttl=100, clock=clock)
    codelists()
    other()

    codelists.clear()
    assert codelists() == 2
    clear_references()
    assert codelists() == 3
    assert other() == 2


def test_the_decorator_form_makes_a_reference_of_the_function() -> None:
    calls: list[int] = []

    @gristmill.reference("currencies", ttl=3600)
    def currencies() -> set[str]:
        calls.append(1)
        return {"EUR", "USD"}

    assert isinstance(currencies, gristmill.Reference)
    assert currencies() == {"EUR", "USD"}
    assert currencies() == {"EUR", "USD"}
    assert calls == [1]


def test_a_time_to_live_must_be_positive() -> None:
    with pytest.raises(ValueError, match="reference 'codelists': ttl must be positive"):
        reference("codelists", Loader(), ttl=0)
