"""Riding out a database outage: back off, try again, carry on, and say so once.

Every long-lived loop (the supervisor, the reaper, the pruner, the workers, the doorbell
listeners) keeps one :class:`Outage` per process. When an operation fails because the database
cannot be reached, the loop calls :meth:`Outage.failed` and waits the delay it returns before
trying again; the first failure of an outage is logged, later ones are not. The first success
afterwards (:meth:`Outage.recovered`) logs how long the outage lasted. A lost connection is
never anyone's fault: the loops do not stop, and work cut off by it is retried.
"""

from __future__ import annotations

import logging
import random
import threading
import time

FIRST_DELAY = 0.1
"""Seconds to wait after the first failed try of an outage."""

MAX_DELAY = 2.0
"""The longest wait between two tries: the database is noticed within this once it is back."""

SETTLE = 5.0
"""Seconds after a recovery during which a new failure counts as the same outage (each thread's
connection, broken by the outage, fails once more on its first use afterwards)."""


class Outage:
    """One process's view of whether the database is reachable; thread-safe."""

    def __init__(
        self,
        logger: logging.Logger,
        *,
        first_delay: float = FIRST_DELAY,
        max_delay: float = MAX_DELAY,
    ):
        self.logger = logger
        self.first_delay = first_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self._since: float | None = None
        self._back_at: float | None = None
        self._next_delay = first_delay
        self._quiet = False

    @property
    def down(self) -> bool:
        """Whether the last try failed (and no later one succeeded)."""
        return self._since is not None

    def failed(self, error: BaseException) -> float:
        """Record a failed try; return how many seconds to wait before the next one.

        The delay doubles from ``first_delay`` up to ``max_delay``, with jitter so that many
        processes do not all try at the same instant. Logs ``error`` only on the first failure
        of an outage.
        """
        with self._lock:
            if self._since is None:
                now = self._since = time.monotonic()
                self._next_delay = self.first_delay
                self._quiet = self._back_at is not None and now - self._back_at < SETTLE
                if not self._quiet:
                    self.logger.warning("database unavailable: %s; retrying", describe(error))
            delay = self._next_delay
            self._next_delay = min(delay * 2, self.max_delay)
        return random.uniform(delay / 2, delay)

    def recovered(self) -> None:
        """Record a successful try; logs the outage's length if one was going on."""
        with self._lock:
            if self._since is None:
                return
            now = time.monotonic()
            if not self._quiet:
                self.logger.warning("database back after %.1f s", now - self._since)
                self._back_at = now
            self._since = None

    def back_for(self) -> float | None:
        """Seconds since this process last saw the database come back: ``0.0`` while it is
        down (not back yet, even if the try under way is about to succeed), ``None`` if it was
        never lost.

        Reapers wait a lease after a recovery before counting expired leases as lost; a loop
        whose first success after an outage is its reap must not take the time before the
        outage for time since it.
        """
        with self._lock:
            if self._since is not None:
                return 0.0
            at = self._back_at
        return None if at is None else time.monotonic() - at


def describe(error: BaseException) -> str:
    """The first line of what went wrong, without the wrappers' repetition."""
    cause = error.__cause__ or error
    text = str(cause).strip() or type(cause).__name__
    return text.splitlines()[0]
