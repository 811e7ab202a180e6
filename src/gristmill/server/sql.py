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


class Fenced(Exception):
    """The fence matched nothing: the claim was taken over."""


class Driver:
    """Runs statements on the Django connection ``alias`` of this thread."""

    def __init__(self, alias: str):
        self.alias = alias

    def raw(self) -> Any:
        """This thread's DB-API connection (opened on first use)."""
        wrapper = connections[self.alias]
        wrapper.ensure_connection()
        return wrapper.connection

    def reset(self) -> None:
        """Drop this thread's connection after an error, so the next call reconnects."""
        with contextlib.suppress(Exception):
            connections[self.alias].close()

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one statement in autocommit mode and return its rows."""
        raise NotImplementedError

    def write(self, *parts: Statement | Many | Fence) -> None:
        """Run the statements in one transaction; :class:`Fenced` (nothing written) if a fence
        matched no row."""
        raise NotImplementedError

    def claim(self, update: Statement, then: Statement) -> list[tuple[Any, ...]]:
        """In one transaction, run ``update`` (an UPDATE ... RETURNING), then ``then`` with the
        returned run ids appended to its parameters; return the returned rows."""
        raise NotImplementedError


class SqliteDriver(Driver):
    def __init__(self, alias: str, lock_path: str):
        super().__init__(alias)
        self.lock_path = lock_path
        self._local = threading.local()
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = sql.replace("%s", "?")
        return converted

    def _lock_fd(self) -> int:
        fd: int | None = getattr(self._local, "fd", None)
        pid = getattr(self._local, "pid", None)
        if fd is None or pid != os.getpid():
            fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
            self._local.fd, self._local.pid = fd, os.getpid()
        return fd

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

    def write(self, *parts: Statement | Many | Fence) -> None:
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

    def claim(self, update: Statement, then: Statement) -> list[tuple[Any, ...]]:
        with self._transaction() as connection:
            rows = connection.execute(self._q(update[0]), update[1]).fetchall()
            if rows:
                keys = [row[1] for row in rows]
                sql = then[0].replace("(%s)", f"({', '.join(['?'] * len(keys))})", 1)
                connection.execute(self._q(sql), [*then[1], *keys])
        return rows  # type: ignore[no-any-return]


class PostgresDriver(Driver):
    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.raw().cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()  # type: ignore[no-any-return]

    def write(self, *parts: Statement | Many | Fence) -> None:
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
        try:
            with psycopg.ClientCursor(self.raw()) as cursor:
                cursor.execute("; ".join(statements), params)
        except psycopg.errors.DivisionByZero:
            raise Fenced() from None

    def claim(self, update: Statement, then: Statement) -> list[tuple[Any, ...]]:
        # One statement, so one round trip: the claim and the runs' move to running.
        sql = (
            f"WITH claimed AS ({update[0]}), moved AS ("
            f"{then[0].replace('(%s)', '(SELECT run_id FROM claimed)', 1)}) "
            "SELECT * FROM claimed"
        )
        with self.raw().cursor() as cursor:
            cursor.execute(sql, [*update[1], *then[1]])
            return cursor.fetchall()  # type: ignore[no-any-return]
