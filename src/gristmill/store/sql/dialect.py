"""What the SQL store needs from a database, and the base class of its dialects.

The store's policy (:class:`~gristmill.store.sql.policy.SqlPolicy`) is written once, in terms
of a few operations a :class:`Dialect` provides: run statements in autocommit mode
(:meth:`Dialect.fetch`), run several in one transaction with fences (:meth:`Dialect.write`),
and say how keys and times are stored. The store never opens a connection itself: a
:class:`ConnectionSource` hands it this thread's DB-API connection (Django's, in practice: see
:mod:`gristmill.server.store`), so this package imports no Django.
"""

from __future__ import annotations

import contextlib
import os
import threading
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Protocol

Statement = tuple[str, Sequence[Any]]
"""One SQL statement and its parameters (``%s`` placeholders)."""


class Many:
    """A statement run once per parameter row (``executemany``)."""

    def __init__(self, sql: str, rows: Sequence[Sequence[Any]]):
        self.sql = sql
        self.rows = rows


class Fence:
    """An UPDATE that must change exactly one row (the claimed unit), or the transaction is
    void."""

    def __init__(self, sql: str, params: Sequence[Any]):
        self.sql = sql
        self.params = params


Part = Statement | Many | Fence


class Fenced(Exception):
    """A fence matched nothing: the claim was taken over, and nothing was written."""


class ClaimSpec:
    """How to claim units: ``update`` (an UPDATE ... RETURNING id, run_id, attempt, kind),
    then ``then`` with the claimed run ids appended to its parameters (it holds one ``(%s)``
    for them). ``function`` holds the arguments of the ``gristmill_claim`` database function
    (worker, queues, lease end, limit, now) for dialects that have it; ``None`` for claims of
    one given unit or run, which use the statements."""

    def __init__(self, update: Statement, then: Statement, function: Sequence[Any] | None):
        self.update = update
        self.then = then
        self.function = function


class Doorbell(Protocol):
    """A wake-up channel: a ring only says "look at the database"."""

    def ring(self) -> None: ...
    def wait(self, timeout: float) -> bool: ...
    def close(self) -> None: ...


class ConnectionSource(Protocol):
    """Where a SQL store gets its database connections and its doorbells.

    ``vendor`` is ``"sqlite"`` or ``"postgresql"``; ``name`` is the database (the file, for
    SQLite).
    """

    vendor: str
    name: str

    def connect(self) -> Any:
        """This thread's open DB-API connection (a ``sqlite3`` or psycopg connection in
        autocommit mode), opened if needed."""

    def close(self) -> None:
        """Close this thread's connection, so that the next :meth:`connect` opens a new one."""

    def close_all(self) -> None:
        """Close every connection of this process (before a fork)."""

    def is_unavailable(self, error: BaseException) -> bool:
        """Whether ``error`` means the database cannot be reached or written (not a bug)."""

    def doorbells(self) -> tuple[Doorbell, Doorbell, Doorbell]:
        """The (work, done, cancel) doorbells of this database."""


class Dialect:
    """One database's way of running the store's statements, on the connection ``source``
    gives this thread. Subclasses fill in :meth:`fetch`, :meth:`write` and :meth:`preload`,
    and declare what they support."""

    vendor: ClassVar[str]
    supports_skip_locked: ClassVar[bool] = False
    """Claims pick their rows with ``FOR UPDATE SKIP LOCKED``."""
    supports_notify: ClassVar[bool] = False
    """Doorbells ring from inside a transaction (``NOTIFY``), when it commits."""
    supports_functions: ClassVar[bool] = False
    """``gristmill_claim`` and ``gristmill_load`` exist in the database."""
    supports_advisory_locks: ClassVar[bool] = False
    """``pg_advisory_xact_lock`` serialises a quota check with its insert (SQLite needs none:
    its writers are serialised already)."""
    supports_groups: ClassVar[bool] = False
    """:meth:`write_groups` writes groups of parts, each fenced on its own, in one
    transaction."""
    looks_before_claiming: ClassVar[bool] = False
    """An idle claim first reads whether anything is queued, so that it takes no write lock."""

    def __init__(self, source: ConnectionSource):
        self.source = source
        self._locals = threading.local()

    session_setup: tuple[str, ...] = ()
    """Statements run once on each new connection (e.g. a worker's commit mode)."""

    @property
    def _thread(self) -> threading.local:
        local = self._locals
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.connection, local.fd = os.getpid(), None, None
        return local

    def raw(self) -> Any:
        """This thread's DB-API connection (opened on first use, cached per thread; opened
        again if the server dropped it meanwhile)."""
        local = self._thread
        if local.connection is not None and self._dropped(local.connection):
            self.reset()
        if local.connection is None:
            local.connection = self.source.connect()
            self._configure(local.connection)
            for statement in self.session_setup:
                local.connection.execute(statement)
        return local.connection

    def _configure(self, connection: Any) -> None:
        """Set a newly opened connection up for the store (nothing by default)."""

    def _dropped(self, connection: Any) -> bool:
        """Whether the server is known to have closed ``connection`` (checked without a round
        trip)."""
        return False

    def reset(self) -> None:
        """Drop this thread's connection after an error, so the next call reconnects."""
        self._thread.connection = None
        with contextlib.suppress(Exception):  # it is being thrown away
            self.source.close()

    def enable_worker_mode(self) -> None:
        """Set this process's connections up for a worker (see
        :meth:`gristmill.store.base.Store.enable_worker_mode`); nothing by default."""

    def is_closed(self, error: BaseException) -> bool:
        """Whether ``error`` says our cached connection was closed before anything was sent."""
        return False

    def key(self, run_id: uuid.UUID) -> Any:
        """A run id as its column stores it."""
        return run_id

    def timestamp(self, value: datetime | None) -> Any:
        """A time as its column stores it."""
        return value

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode and return its rows."""
        raise NotImplementedError

    def write(
        self, *parts: Part, claim: ClaimSpec | None = None, read: Statement | None = None
    ) -> list[tuple[Any, ...]]:
        """Run ``parts`` in one transaction; :class:`Fenced` (nothing written) if a fence
        matched no row.

        With ``read`` (a query; never with ``claim``), the transaction ends with it and its
        rows are returned (what the writes queued, for the store's bell, at no extra round
        trip).

        With ``claim``, the same transaction then claims units (see :class:`ClaimSpec`) and
        returns one row per claimed unit: (unit, run, attempt, kind, then what
        :meth:`preload` reads); otherwise the result is empty.
        """
        raise NotImplementedError

    def write_groups(
        self, groups: Sequence[Sequence[Part]], *, claim: ClaimSpec | None = None
    ) -> tuple[list[bool], list[tuple[Any, ...]]]:
        """Run each group of parts as :meth:`write` would, all in one transaction, a group
        whose fence matched no row leaving no trace (the others are written); then the claim.
        Returns whether each group was written, and the claimed rows."""
        raise NotImplementedError

    def preload(self, row: Sequence[Any]) -> dict[str, Any] | None:
        """What a claimed row (from :meth:`write`) carries of its run, by
        :data:`~gristmill.store.sql.columns.LOADED` name, or None if it carries nothing."""
        raise NotImplementedError

    def load(self, key: Any, *, claimed: bool = False) -> dict[str, Any] | None:
        """The run ``key`` by :data:`~gristmill.store.sql.columns.LOADED` name (None if there
        is no such run); with ``claimed``, the attempt may be left out (the claim knows it)."""
        raise NotImplementedError

    def load_many(self, keys: Sequence[Any]) -> list[dict[str, Any]]:
        """:meth:`load` of each of ``keys`` (at most 500) in one query, in no particular
        order; unknown keys are left out."""
        raise NotImplementedError
