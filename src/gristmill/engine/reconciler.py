"""The reconciler: makes sure every queued unit is eventually run, whatever the doorbell lost.

The database is the truth and a message is only a doorbell: a broker that lost messages (a
purged queue, a Redis restarted without persistence, a publish that failed while the broker was
down) must only delay work. So, periodically, one process among all those that use the
database (the lock :data:`LOCK`, taken with :meth:`~gristmill.store.base.Store.try_lock` for a
lease of :attr:`Reconciler.lease` seconds, so that a holder frozen mid-pass is taken over once
its lease runs out):

* re-queues units whose lease expired (:meth:`~gristmill.store.base.Store.reap`), which rings
  for them again, and
* rings again (:meth:`~gristmill.store.base.Store.announce`) for units that have been queued for
  at least ``stale_after`` seconds, as this reconciler saw them.

A unit rung for twice is harmless: a message for a unit already claimed or done is dropped.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from gristmill.store.base import Store
from gristmill.store.records import QueuedUnit

logger = logging.getLogger("gristmill.reconciler")

LOCK = "gristmill-reconciler"
"""The name of the database lock that lets one reconciler run at a time."""

LEASE = 60.0
"""How long a pass holds :data:`LOCK` at most: far longer than a pass takes (a pass that
outlived it would only ring twice for some units, which is harmless)."""

SCAN_LIMIT = 10_000
"""The most queued units one pass looks at (the oldest)."""


@dataclass(frozen=True)
class Pass:
    """What one pass did."""

    ran: bool
    """False if another process held the lock (this pass did nothing)."""
    reaped: int = 0
    rung: int = 0


class Reconciler:
    """Run :meth:`run_once` every ``interval`` seconds (see :attr:`interval`)."""

    def __init__(
        self, store: Store, *, stale_after: float, reap: bool = True, lease: float = LEASE
    ):
        self.store = store
        self.lease = lease
        """How long a pass holds the lock at most (see :data:`LEASE`)."""
        self.stale_after = stale_after
        self.reap = reap
        self._seen: dict[int, tuple[float, str]] = {}
        """Queued units seen by earlier passes: since when (monotonic) and their queue."""

    @property
    def interval(self) -> float:
        """How often to run a pass: often enough that a lost message costs at most about
        one and a half ``stale_after``."""
        return max(0.05, self.stale_after / 2)

    def run_once(self) -> Pass:
        """One pass, if no other process is running one; raises
        :class:`~gristmill.errors.StoreUnavailableError` while the database is unreachable."""
        store = self.store
        if not store.try_lock(LOCK, lease=self.lease):
            self._seen.clear()  # another reconciler is at work; start afresh if it stops
            return Pass(ran=False)
        try:
            reaped = store.reap() if self.reap else 0
            now = time.monotonic()
            queued = store.queued_units(limit=SCAN_LIMIT)
            seen: dict[int, tuple[float, str]] = {}
            stale: list[QueuedUnit] = []
            for unit in queued:
                since = self._seen.get(unit.unit_id, (now, unit.queue))[0]
                if now - since >= self.stale_after:
                    stale.append(unit)
                    since = now  # rung again now: wait as long again before the next ring
                seen[unit.unit_id] = (since, unit.queue)
            self._seen = seen
            if stale:
                logger.info("ringing again for %d unit(s) queued too long", len(stale))
                store.announce(stale)
            return Pass(ran=True, reaped=reaped, rung=len(stale))
        finally:
            store.unlock(LOCK)
