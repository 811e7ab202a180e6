"""Quotas at submission: who a submitter is, and the refusal that says which quota a
submission would pass, the usage, and when it frees up.

The check itself is the store's, in the transaction that stores the run(s) (see
:meth:`gristmill.store.base.Store.create_run`): two submissions of one submitter racing for
the last place cannot both pass, and a refused submission stores nothing. What is here only
words the refusal, from the usage read just after it.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

from gristmill.errors import QuotaError, StorageQuotaError
from gristmill.store.base import Store
from gristmill.store.records import QuotaLimits, QuotaUsage

RETRY_CONCURRENT = 30
"""Seconds a client refused at its concurrent quota is asked to wait (Retry-After): a place
frees up when one of its runs ends, which cannot be known in advance."""

MB = 1024 * 1024


def user_submitter(user_id: int) -> str:
    """The submitter key of a signed-in user (runs, fairness and quotas are counted by it)."""
    return f"user:{user_id}"


def address_submitter(address: str) -> str:
    """The submitter key of an anonymous client, by its address."""
    return f"address:{address}"


def _megabytes(size: int) -> str:
    return f"{size / MB:.1f} MB"


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def refusal(store: Store, submitter: str, limits: QuotaLimits) -> QuotaError:
    """The error for a submission of ``limits.runs`` runs (``limits.new_bytes`` of inputs)
    that the store refused: the first quota it would pass, by the usage now."""
    usage = store.quota_usage(submitter)
    return describe(usage, limits)


def describe(usage: QuotaUsage, limits: QuotaLimits) -> QuotaError:
    """The refusal of a submission of ``limits.runs`` runs at ``usage``."""
    now = datetime.now(UTC)
    adding = "this run" if limits.runs == 1 else f"these {limits.runs} runs"
    if limits.concurrent is not None and usage.concurrent + limits.runs > limits.concurrent:
        return QuotaError(
            "concurrent",
            f"quota of concurrent runs: {usage.concurrent} of {limits.concurrent} runs "
            f"are queued or running, and {adding} would pass it; a place frees up when one of "
            "them ends",
            RETRY_CONCURRENT,
        )
    if limits.per_day is not None and usage.runs_today + limits.runs > limits.per_day:
        frees = (usage.oldest_today or now) + timedelta(days=1)
        wait = max(1, math.ceil((frees - now).total_seconds()))
        return QuotaError(
            "runs_per_day",
            f"quota of runs per day: {usage.runs_today} of {limits.per_day} runs in the "
            f"last 24 hours, and {adding} would pass it; the next place frees up at "
            f"{_when(frees)}",
            wait,
        )
    if limits.storage_bytes is not None:
        frees_at = (
            f"; space frees up as runs expire, the next at {_when(usage.next_expiry)}"
            if usage.next_expiry is not None
            else ""
        )
        return StorageQuotaError(
            "storage",
            f"storage quota: {_megabytes(usage.storage_bytes)} of "
            f"{_megabytes(limits.storage_bytes)} used by unexpired runs, and {adding} would add "
            f"{_megabytes(limits.new_bytes)}{frees_at}",
        )
    # The usage fell back under every quota since the store refused: say so, and ask again.
    return QuotaError("concurrent", "a quota was reached; try again", RETRY_CONCURRENT)
