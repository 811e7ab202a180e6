"""The SQL store's connection to its database: the dialect, guarded calls that turn a lost
connection into :class:`~gristmill.errors.StoreUnavailableError`, doorbells, supervisor
heartbeats, and what a process does with its connections around forks and threads.

:class:`SqlConnection` is the base of :class:`~gristmill.store.sql.policy.SqlPolicy`; the
policy (claims, fences, finishing...) lives there.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from gristmill.errors import NotFoundError, StoreUnavailableError
from gristmill.store.base import Store
from gristmill.store.records import LOCK_LEASE
from gristmill.store.sql.dialect import ConnectionSource, Dialect, Fenced
from gristmill.store.sql.postgresql import PostgresDialect
from gristmill.store.sql.queries import QUERIES as Q
from gristmill.store.sql.sqlite import SqliteDialect

DIALECTS: dict[str, type[Dialect]] = {"sqlite": SqliteDialect, "postgresql": PostgresDialect}
"""The dialect of each database vendor; a new database is a new module and an entry here."""


def _parse_uuid(run_id: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(run_id))
    except ValueError:
        raise NotFoundError(f"no run with id {run_id!r}") from None


class SqlConnection(Store):
    """What every SQL store operation stands on: ``source`` (see
    :class:`~gristmill.store.sql.dialect.ConnectionSource`) and the dialect of its vendor."""

    supports_heartbeats = True

    def __init__(self, source: ConnectionSource):
        self.source = source
        self.vendor = source.vendor
        self.sql: Dialect = DIALECTS[source.vendor](source)
        self._work_bell, self._done_bell, self._cancel_bell = source.doorbells()
        self._lock_id = uuid.uuid4().hex[:12]
        """Tells this store's locks from another store's in the same thread."""

    # -- helpers --------------------------------------------------------------------------

    def _id(self, run_id: str) -> Any:
        return self.sql.key(_parse_uuid(run_id))

    def _dt(self, value: datetime | None) -> Any:
        return self.sql.timestamp(value)

    def _guard(self, operation: Callable[[], Any], *, again: bool = True) -> Any:
        """Run a dialect operation; a lost connection becomes StoreUnavailableError and is
        dropped, so that the next call reconnects."""
        try:
            return operation()
        except Fenced:
            raise
        except Exception as error:
            if again and self.sql.is_closed(error):
                # Our cached connection was closed under us (e.g. at the end of a web
                # request) before anything was sent: reconnect and try once more.
                self.sql.reset()
                return self._guard(operation, again=False)
            if self.source.is_unavailable(error):
                self.sql.reset()
                raise StoreUnavailableError(f"the database is unavailable: {error}") from error
            raise

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self._guard(lambda: self.sql.fetch(sql, params))  # type: ignore[no-any-return]

    def _ring(self, bell: str) -> None:
        # A dialect with NOTIFY rang inside the transaction, delivered when it committed.
        if not self.sql.supports_notify:
            bells = {"work": self._work_bell, "done": self._done_bell}
            bells.get(bell, self._cancel_bell).ring()

    def _notify(self, channel: str, payload: str = "") -> list[Any]:
        return [(Q["notify"], [channel, payload])] if self.sql.supports_notify else []

    def _beat_write(self, *parts: Any) -> None:
        """Run ``parts`` (which hold no fence) in one transaction."""
        self._guard(lambda: self.sql.write(*parts))

    # -- presence -------------------------------------------------------------------------

    def ping(self) -> None:
        self._fetch(Q["ping"])

    def beat(self, name: str, workers: int, started_at: float) -> None:
        now = time.time()
        self._beat_write(
            (Q["beat"], [name, workers, started_at, now]),
            (Q["forget_silent_supervisors"], [now - 3600]),
        )

    def sign_off(self, name: str) -> None:
        self._beat_write((Q["sign_off"], [name]))

    def enable_worker_mode(self) -> None:
        self.sql.enable_worker_mode()

    # -- locks ----------------------------------------------------------------------------

    def _holder(self) -> str:
        """Who holds a lock taken here: this store, in this process and thread (a forked
        child or another thread is another holder, as another connection was)."""
        return f"{socket.gethostname()}:{os.getpid()}:{threading.get_ident()}:{self._lock_id}"

    def try_lock(self, name: str, *, lease: float = LOCK_LEASE) -> bool:
        """A lease row in ``gristmill_lock``, taken in one statement if it is free, expired or
        already ours (then renewed)."""
        now = time.time()
        holder = self._holder()
        rows = self._guard(
            lambda: self.sql.write(
                (Q["take_lock"], [name, holder, now + lease, now]),
                read=(Q["lock_holder"], [name]),
            )
        )
        return bool(rows) and rows[0][0] == holder

    def unlock(self, name: str) -> None:
        with contextlib.suppress(StoreUnavailableError):  # its lease runs out by itself
            self._beat_write((Q["give_back_lock"], [name, self._holder()]))

    # -- doorbells ------------------------------------------------------------------------

    def ring_work(self) -> None:
        if self.sql.supports_notify:
            self._beat_write(*self._notify("gristmill_work"))
        else:
            self._work_bell.ring()

    def wait_for_work(self, timeout: float) -> None:
        self._work_bell.wait(timeout)

    def wait_for_cancel(self, timeout: float) -> bool:
        return self._cancel_bell.wait(timeout)

    def ring_done(self, run_id: str) -> None:
        if self.sql.supports_notify:
            self._beat_write(*self._notify("gristmill_done", run_id))
        else:
            self._done_bell.ring()

    def wait_for_done(self, timeout: float) -> None:
        self._done_bell.wait(timeout)

    def end_thread(self) -> None:
        self.sql.reset()

    def close(self) -> None:
        self._work_bell.close()
        self._done_bell.close()
        self._cancel_bell.close()

    def before_fork(self) -> None:
        # A forked child would share this thread's connections (their sockets) with us.
        self.source.close_all()
