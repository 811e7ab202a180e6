"""Reference data loaded once per worker process and refreshed after a time to live.

A check often needs a resource that changes rarely and costs a download or a parse to get: a
codelist, a schema, a lookup table. :func:`reference` wraps the function that loads it::

    @gristmill.reference("currencies", ttl=24 * 3600)
    def currencies() -> set[str]:
        return set(fetch_codelist("currency.csv"))

    currencies()  # loads on the first call in this process, then serves the loaded value

Under threads, one load runs at a time. Before the first value exists, other callers wait for
it. Once the time to live has passed, the first caller reloads it while the others keep getting
the old value. A failed reload is logged and the old value kept, for at most ``max_stale``
seconds past its time to live (default: one more ``ttl``), with a new attempt at most every
``retry`` seconds; past that the loader's error is raised to the caller. A failed first load
raises the loader's error too. ``clear()`` (one reference) and :func:`clear_references` (all of
them) forget the values, for tests.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, overload

T = TypeVar("T")

log = logging.getLogger("gristmill.references")


@dataclass(frozen=True, slots=True)
class _Loaded(Generic[T]):
    value: T
    loaded_at: float


class Reference(Generic[T]):
    """One reference resource: call it to get its value. Made by :func:`reference`."""

    def __init__(
        self,
        name: str,
        loader: Callable[[], T],
        *,
        ttl: float,
        max_stale: float | None = None,
        retry: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        if ttl <= 0:
            raise ValueError(f"reference {name!r}: ttl must be positive seconds, not {ttl!r}")
        self.name = name
        self.loader = loader
        self.ttl = float(ttl)
        self.max_stale = self.ttl if max_stale is None else float(max_stale)
        self.retry = min(self.ttl, 60.0) if retry is None else float(retry)
        self.clock = clock
        self._loaded: _Loaded[T] | None = None
        self._next_attempt = 0.0
        self._lock = threading.Lock()
        _all.add(self)

    def __repr__(self) -> str:
        return f"<Reference {self.name!r} ttl={self.ttl:g}s>"

    def __call__(self) -> T:
        """The value: loaded now if there is none, reloaded if its time to live has passed.

        Raises what the loader raised when there is no value to serve: on the first load,
        or when a failed reload leaves only a value older than ``ttl + max_stale``.
        """
        loaded = self._loaded
        now = self.clock()
        if loaded is not None and now - loaded.loaded_at < self.ttl:
            return loaded.value
        if loaded is not None and now < self._next_attempt and self._usable(loaded, now):
            return loaded.value  # a reload failed a moment ago: not yet time to try again
        if loaded is not None and self._usable(loaded, now):
            if not self._lock.acquire(blocking=False):
                return loaded.value  # another thread is reloading: serve the old value
        else:
            self._lock.acquire()  # nothing to serve: wait for whoever is loading
        try:
            return self._refresh()
        finally:
            self._lock.release()

    def _usable(self, loaded: _Loaded[T], now: float) -> bool:
        return now - loaded.loaded_at < self.ttl + self.max_stale

    def _refresh(self) -> T:
        now = self.clock()
        loaded = self._loaded
        if loaded is not None and now - loaded.loaded_at < self.ttl:
            return loaded.value  # loaded by the thread we waited for
        try:
            value = self.loader()
        except Exception as error:
            self._next_attempt = self.clock() + self.retry
            if loaded is None or not self._usable(loaded, self.clock()):
                raise
            age = self.clock() - loaded.loaded_at
            log.warning(
                "reference %r could not be reloaded (%s: %s); serving the value loaded "
                "%.0f s ago, for at most %.0f s more",
                self.name,
                type(error).__name__,
                error,
                age,
                self.ttl + self.max_stale - age,
            )
            return loaded.value
        self._loaded = _Loaded(value, self.clock())
        return value

    def clear(self) -> None:
        """Forget the value: the next call loads it again."""
        with self._lock:
            self._loaded = None
            self._next_attempt = 0.0

    def _after_fork(self) -> None:
        # A lock held by a thread of the parent at fork time would never be released here.
        self._lock = threading.Lock()


_all: weakref.WeakSet[Reference[Any]] = weakref.WeakSet()


def _reset_locks() -> None:
    for ref in list(_all):
        ref._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_locks)


def clear_references() -> None:
    """Forget the values of every reference in this process (for tests)."""
    for ref in list(_all):
        ref.clear()


@overload
def reference(
    name: str,
    loader: Callable[[], T],
    *,
    ttl: float,
    max_stale: float | None = None,
    retry: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Reference[T]: ...


@overload
def reference(
    name: str,
    loader: None = None,
    *,
    ttl: float,
    max_stale: float | None = None,
    retry: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[Callable[[], T]], Reference[T]]: ...


def reference(
    name: str,
    loader: Callable[[], T] | None = None,
    *,
    ttl: float,
    max_stale: float | None = None,
    retry: float | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Reference[T] | Callable[[Callable[[], T]], Reference[T]]:
    """A reference resource named ``name`` (for the log), loaded by ``loader`` once per
    process and reloaded after ``ttl`` seconds; used as ``reference(name, loader, ttl=...)``
    or as a decorator ``@reference(name, ttl=...)``. See the module docstring for what
    happens under threads and when a reload fails."""

    def make(function: Callable[[], T]) -> Reference[T]:
        return Reference(name, function, ttl=ttl, max_stale=max_stale, retry=retry, clock=clock)

    if loader is None:
        return make
    return make(loader)
