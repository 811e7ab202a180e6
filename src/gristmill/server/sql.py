"""Fast paths to the database under Django's connections, one driver per database.

The store's hot operations (submit, claim, save, finish) are each one transaction of a few
statements. These drivers run such a transaction with as little overhead as the database
allows:

* SQLite: on the raw ``sqlite3`` connection, ``BEGIN IMMEDIATE`` under an exclusive ``flock``
  on a file beside the database. Writers then queue in the kernel and wake the moment the lock
  is free, instead of meeting SQLite's busy handler, which sleeps in whole milliseconds.
* PostgreSQL: on the raw psycopg connection, all statements sent as one simple query, which
  PostgreSQL runs as one implicit transaction: one round trip per operation. The fencing check
  is an assertion inside it (a division by zero when the claim was taken over), which aborts
  the whole transaction.

Statements are written with ``%s`` placeholders for both.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import threading
from collections.abc import Iterator, Sequence
from typing import Any

from django.db import connections

Statement = tuple[str, Sequence[Any]]
"""One SQL statement and its parameters."""


class Many:
    """A statement run once per parameter row (``executemany``)."""

    def __init__(self, sql: str, rows: Sequence[Sequence[Any]]):
        self.sql = sql
        self.rows = rows


class Fence:
    """An UPDATE that must change exactly the claimed unit, or the transaction is void."""

    def __init__(self, sql: str, params: Sequence[Any]):
        self.sql = sql
        self.params = params


class ClaimSpec:
    """How to claim units: ``update`` (an UPDATE ... RETURNING id, run_id, attempt, kind), then
    ``then`` with the claimed run ids appended to its parameters (it holds one ``(%s)`` for
    them). Drivers that can also return each run's ``load`` columns (from ``r``) in the same
    trip append them to each row.

    ``function`` holds the arguments of the ``gristmill_claim`` database function (worker,
    queues, lease end, limit, now), which does the same on PostgreSQL with its plan cached;
    ``None`` for claims of one given unit or run, which use the statements.
    """

    def __init__(
        self,
        update: Statement,
        then: Statement,
        load: str,
        function: Sequence[Any] | None = None,
    ):
        self.update = update
        self.then = then
        self.load = load
        self.function = function


class Fenced(Exception):
    """The fence matched nothing: the claim was taken over."""


class Driver:
    """Runs statements on the Django connection ``alias`` of this thread."""

    def __init__(self, alias: str):
        self.alias = alias
        self._locals = threading.local()

    session_setup: tuple[str, ...] = ()
    """Statements run once on each new connection (e.g. a worker's commit mode)."""

    def raw(self) -> Any:
        """This thread's DB-API connection (opened on first use, cached per thread; opened
        again if the server dropped it meanwhile)."""
        local = self._thread
        if local.connection is not None and self._dropped(local.connection):
            self.reset()
        wrapper = connections[self.alias] if local.connection is None else None
        if wrapper is not None:
            wrapper.ensure_connection()
            local.connection = wrapper.connection
            for statement in self.session_setup:
                local.connection.execute(statement)
        return local.connection

    @property
    def _thread(self) -> threading.local:
        local = self._locals
        if getattr(local, "pid", None) != os.getpid():
            local.pid, local.connection, local.fd = os.getpid(), None, None
        return local

    def _dropped(self, connection: Any) -> bool:
        """Whether the server is known to have closed ``connection`` (checked without a round
        trip)."""
        return False

    def reset(self) -> None:
        """Drop this thread's connection after an error, so the next call reconnects."""
        self._thread.connection = None
        with contextlib.suppress(Exception):
            connections[self.alias].close()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode and return its rows."""
        raise NotImplementedError

    def write(
        self, *parts: Statement | Many | Fence, claim: ClaimSpec | None = None
    ) -> list[tuple[Any, ...]]:
        """Run the statements in one transaction; :class:`Fenced` (nothing written) if a fence
        matched no row.

        With ``claim``, the same transaction then claims units (see :class:`ClaimSpec`) and the
        claimed rows are returned; otherwise the result is empty.
        """
        raise NotImplementedError

    def claim(self, spec: ClaimSpec) -> list[tuple[Any, ...]]:
        """Claim units in a transaction of their own."""
        return self.write(claim=spec)


class SqliteDriver(Driver):
    def __init__(self, alias: str, lock_path: str):
        super().__init__(alias)
        self.lock_path = lock_path
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = sql.replace("%s", "?")
        return converted

    def _lock_fd(self) -> int:
        local = self._thread
        if local.fd is None:
            local.fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        return local.fd  # type: ignore[no-any-return]

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[Any]:
        connection = self.raw()
        fd = self._lock_fd()
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            connection.execute("BEGIN IMMEDIATE")
            try:
                yield connection
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            connection.execute("COMMIT")
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        return self.raw().execute(self._q(sql), params).fetchall()  # type: ignore[no-any-return]

    def write(
        self, *parts: Statement | Many | Fence, claim: ClaimSpec | None = None
    ) -> list[tuple[Any, ...]]:
        with self._transaction() as connection:
            for part in parts:
                if isinstance(part, Fence):
                    if connection.execute(self._q(part.sql), part.params).rowcount != 1:
                        raise Fenced()
                elif isinstance(part, Many):
                    if part.rows:
                        connection.executemany(self._q(part.sql), part.rows)
                else:
                    connection.execute(self._q(part[0]), part[1])
            if claim is None:
                return []
            rows = connection.execute(self._q(claim.update[0]), claim.update[1]).fetchall()
            if rows:
                keys = [row[1] for row in rows]
                sql = claim.then[0].replace("(%s)", f"({', '.join(['?'] * len(keys))})", 1)
                connection.execute(self._q(sql), [*claim.then[1], *keys])
            return rows  # type: ignore[no-any-return]


class PostgresDriver(Driver):
    def _dropped(self, connection: Any) -> bool:
        # An idle connection has nothing to read unless the server hung up (a restart sends
        # "terminating connection" and closes it): then nothing sent on it can have been run,
        # and a fresh connection is used instead of failing the operation. Driver connections
        # never LISTEN, so no notification is mistaken for it.
        if connection.closed or connection.broken:
            return True
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
        return bool(readable)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.raw().cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()  # type: ignore[no-any-return]

    def write(
        self, *parts: Statement | Many | Fence, claim: ClaimSpec | None = None
    ) -> list[tuple[Any, ...]]:
        # Several statements sent as one simple query run as one implicit transaction, in one
        # round trip; psycopg binds the parameters client-side, quoting them safely.
        import psycopg

        statements: list[str] = []
        params: list[Any] = []
        for part in parts:
            if isinstance(part, Fence):
                statements.append(
                    f"WITH fenced AS ({part.sql} RETURNING 1) "
                    "SELECT 1 / (SELECT count(*) FROM fenced)::int"
                )
                params.extend(part.params)
            elif isinstance(part, Many):
                if part.rows:
                    head, _, row = part.sql.partition(" VALUES ")
                    statements.append(f"{head} VALUES {', '.join([row] * len(part.rows))}")
                    params.extend(value for values in part.rows for value in values)
            else:
                statements.append(part[0])
                params.extend(part[1])
        if claim is not None and claim.function is not None:
            # The claim, the runs' move to running, and what the engine needs to know about
            # each claimed run: one statement, the last of the transaction.
            statements.append(
                "SELECT c.out_unit, c.out_run, c.out_attempt, c.out_kind, "
                "gristmill_load(c.out_run) FROM gristmill_claim(%s, %s, %s, %s, %s) c"
            )
            params.extend(claim.function)
        elif claim is not None:
            statements.append(
                f"WITH claimed AS ({claim.update[0]}), moved AS ("
                f"{claim.then[0].replace('(%s)', '(SELECT run_id FROM claimed)', 1)}) "
                f"SELECT c.id, c.run_id, c.attempt, c.kind, {claim.load} "
                "FROM claimed c JOIN gristmill_run r ON r.id = c.run_id"
            )
            params.extend([*claim.update[1], *claim.then[1]])
        try:
            with psycopg.ClientCursor(self.raw()) as cursor:
                cursor.execute("; ".join(statements), params)
                if claim is None:
                    return []
                while cursor.nextset():
                    pass  # the claim's rows are the last result
                return cursor.fetchall()
        except psycopg.errors.DivisionByZero:
            raise Fenced() from None
