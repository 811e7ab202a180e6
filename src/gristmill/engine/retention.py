"""Retention: an ended run is expired once its pipeline's retention period is over, or at once
when someone deletes it.

Expiring a run takes two steps that cannot share a transaction. First the database drops the
run's heavy rows (steps, results, log, inputs, outputs) and marks it ``expired`` with when and
why, keeping the small record that lets its URL explain itself; then its files are removed and
the run is marked ``wiped``. A crash between the two leaves an expired run that is not wiped, and
the next :func:`prune` removes its files first: deletion resumes. Both steps are conditional and
idempotent, so pruners on several machines may run at once.

A run is never expired while queued or running (a recomputation included), nor while pinned.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from gristmill.storage import Storage
from gristmill.store.base import Store

logger = logging.getLogger("gristmill.retention")

BATCH = 200
"""Runs read from the database at a time."""


@dataclass
class Pruned:
    """What one :func:`prune` did."""

    expired: int = 0
    """Runs expired because their retention period was over."""
    wiped: int = 0
    """Runs whose files were removed (those just expired, and any left by an earlier crash)."""
    failed: int = 0
    """Runs whose files could not be removed (logged; tried again on the next prune)."""


def period_text(period: timedelta) -> str:
    """A retention period for people: ``7 days``, ``1 day 12 hours``, ``90 seconds``."""
    seconds = max(0, round(period.total_seconds()))
    parts = []
    for name, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        count, seconds = divmod(seconds, size)
        if count:
            parts.append(f"{count} {name}{'s' if count != 1 else ''}")
    return " ".join(parts[:2]) or "0 seconds"


def wipe(store: Store, storage: Storage, run_id: str) -> None:
    """Remove the files of an expired run and record that they are gone.

    Raises :class:`OSError` if they cannot all be removed; the run stays unwiped then.
    """
    storage.delete_run(run_id)
    store.mark_wiped(run_id)


def remove(store: Store, storage: Storage, run_id: str, *, reason: str) -> bool:
    """Expire an ended run now, for ``reason``, and remove its files.

    Returns False if the run is queued or running, or already expired. If its files cannot be
    removed, raises :class:`OSError` with the run already expired: :func:`prune` finishes.
    """
    if not store.expire(run_id, reason=reason):
        return False
    wipe(store, storage, run_id)
    return True


def prune(
    store: Store,
    storage: Storage,
    *,
    now: datetime | None = None,
    batch: int = BATCH,
) -> Pruned:
    """Finish the removals an earlier crash left half-done, then expire every ended, unpinned
    run whose retention period is over (at ``now``, default the current time)."""
    pruned = Pruned()
    for run_id in store.unwiped(limit=batch):
        _wipe_logged(store, storage, run_id, pruned)
    moment = now or datetime.now(UTC)
    while due := store.due_for_expiry(moment, limit=batch):
        expired = 0
        for run in due:
            period = period_text(run.expires_at - run.created_at)
            reason = f"it was kept for its retention period of {period}"
            if store.expire(run.id, reason=reason):
                expired += 1
                _wipe_logged(store, storage, run.id, pruned)
        pruned.expired += expired
        if expired == 0 or len(due) < batch:
            break  # every run listed changed meanwhile (or none is left): nothing more to do
    return pruned


def _wipe_logged(store: Store, storage: Storage, run_id: str, pruned: Pruned) -> None:
    try:
        wipe(store, storage, run_id)
    except OSError as error:
        logger.error("could not remove the files of expired run %s: %s", run_id, error)
        pruned.failed += 1
    else:
        pruned.wiped += 1
