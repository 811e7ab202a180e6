"""The ends of quick units, written several at a time.

A worker running many quick units (a burst of small jobs) spends most of its time in the write
that ends each one: on SQLite, one transaction per unit under the database's single write lock.
Where the store can write several ends in one transaction (:attr:`Store.groups_ends`), the
worker claims several units at a time and keeps each one's last step here instead of writing
it; the ends go out together, with the claim of the next units, once the units claimed are done
(:class:`~gristmill.executors.worker.Worker`).

Nothing waits long for that: ends are kept only while the units run quickly, and the
worker's watchdog writes any end kept longer than :data:`KEEP_FOR` (a unit that turned out
slow does not hold the others' results back). Each end is fenced on its own: one taken over
meanwhile is dropped, as its write alone would have been, and the others are written.
"""

from __future__ import annotations

import logging
import threading
import time

from gristmill.store.base import Store
from gristmill.store.records import NextClaim, StepEnd

logger = logging.getLogger("gristmill.worker")

KEEP_FOR = 0.05
"""Longest a finished unit's end is kept before the watchdog writes it (seconds)."""


class PendingEnds:
    """The ends a worker has not written yet; thread-safe (the worker's thread and its
    watchdog's both write them)."""

    def __init__(self, store: Store):
        self.store = store
        self._lock = threading.Lock()
        self._writing = threading.Lock()
        self._ends: list[StepEnd] = []
        self._since: float | None = None

    def __len__(self) -> int:
        return len(self._ends)

    def add(self, end: StepEnd) -> None:
        with self._lock:
            self._ends.append(end)
            if self._since is None:
                self._since = time.monotonic()

    def due(self) -> bool:
        """Whether the oldest end has been kept :data:`KEEP_FOR` seconds."""
        since = self._since
        return since is not None and time.monotonic() - since >= KEEP_FOR

    def write(self, then_claim: NextClaim | None = None) -> None:
        """Write every kept end in one transaction, claiming with ``then_claim`` in it.

        Raises :class:`~gristmill.errors.StoreUnavailableError` with the ends kept, to be
        written again: if the lost write had committed after all, each end's fence drops it
        the second time (its unit is done), so nothing is written twice."""
        with self._writing:
            with self._lock:
                ends, self._ends, self._since = self._ends, [], None
            if not ends:
                return
            try:
                written = self.store.end_steps(ends, then_claim=then_claim)
            except BaseException:
                with self._lock:
                    self._ends[:0] = ends
                    self._since = time.monotonic()
                raise
        for end, saved in zip(ends, written, strict=True):
            if not saved:
                logger.warning(
                    "attempt %s of run %s was taken over; its work is discarded",
                    end.claim.attempt,
                    end.claim.run_id,
                )
