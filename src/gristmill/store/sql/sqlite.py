"""The SQLite dialect: one writer at a time under a file lock, ``?`` placeholders, keys and
times stored as text.

Writers take an exclusive ``flock`` on a file beside the database, then ``BEGIN IMMEDIATE``:
they queue in the kernel and wake the moment the lock is free, instead of meeting SQLite's busy
handler, which sleeps in whole milliseconds. An idle claim first reads whether anything is
queued (a read takes no lock). Doorbells are rung by the store after the commit.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
import uuid
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

from gristmill.store.sql.columns import LOADED, sqlite_load_columns
from gristmill.store.sql.dialect import ClaimSpec, Dialect, Fence, Fenced, Many, Part, Statement

_LOAD = f"SELECT {sqlite_load_columns()} FROM gristmill_run r WHERE r.id = ?"
_LOAD_ANY = f"SELECT {sqlite_load_columns()} FROM gristmill_run r WHERE r.id IN"
_LOAD_CLAIMED = f"SELECT {sqlite_load_columns(attempt=False)} FROM gristmill_run r WHERE r.id = ?"


class SqliteDialect(Dialect):
    vendor = "sqlite"
    looks_before_claiming = True
    supports_groups = True

    def __init__(self, source: Any):
        super().__init__(source)
        self.lock_path = f"{source.name}.lock"
        self._sql: dict[str, str] = {}

    def _q(self, sql: str) -> str:
        converted = self._sql.get(sql)
        if converted is None:
            converted = self._sql[sql] = sql.replace("%s", "?")
        return converted

    def is_closed(self, error: BaseException) -> bool:
        return isinstance(error, sqlite3.ProgrammingError) and "closed" in str(error)

    def key(self, run_id: uuid.UUID) -> Any:
        return run_id.hex

    def timestamp(self, value: datetime | None) -> Any:
        if value is None:
            return None
        # What Django stores on SQLite (naive UTC as text), without its per-call overhead.
        return str(value.astimezone(UTC).replace(tzinfo=None))

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
        self, *parts: Part, claim: ClaimSpec | None = None, read: Statement | None = None
    ) -> list[tuple[Any, ...]]:
        with self._transaction() as connection:
            self._run(connection, parts)
            if read is not None:
                return connection.execute(self._q(read[0]), read[1]).fetchall()  # type: ignore[no-any-return]
            return self._claim(connection, claim)

    def write_groups(
        self, groups: Sequence[Sequence[Part]], *, claim: ClaimSpec | None = None
    ) -> tuple[list[bool], list[tuple[Any, ...]]]:
        written = []
        with self._transaction() as connection:
            for group in groups:
                connection.execute("SAVEPOINT unit")
                try:
                    self._run(connection, group)
                except Fenced:
                    connection.execute("ROLLBACK TO unit")
                    written.append(False)
                else:
                    written.append(True)
                connection.execute("RELEASE unit")
            return written, self._claim(connection, claim)

    def _run(self, connection: Any, parts: Sequence[Part]) -> None:
        for part in parts:
            if isinstance(part, Fence):
                if connection.execute(self._q(part.sql), part.params).rowcount != 1:
                    raise Fenced()
            elif isinstance(part, Many):
                if part.rows:
                    connection.executemany(self._q(part.sql), part.rows)
            else:
                connection.execute(self._q(part[0]), part[1])

    def _claim(self, connection: Any, claim: ClaimSpec | None) -> list[tuple[Any, ...]]:
        if claim is None:
            return []
        rows = connection.execute(self._q(claim.update[0]), claim.update[1]).fetchall()
        if not rows:
            return []
        keys = [row[1] for row in rows]
        sql = claim.then[0].replace("(%s)", f"({', '.join(['?'] * len(keys))})", 1)
        connection.execute(self._q(sql), [*claim.then[1], *keys])
        return rows  # type: ignore[no-any-return]

    def preload(self, row: Sequence[Any]) -> dict[str, Any] | None:
        # The runner loads the run after the claim, outside the write lock: a load inside it
        # would make every other writer wait for it.
        return None

    def load(self, key: Any, *, claimed: bool = False) -> dict[str, Any] | None:
        rows = self.raw().execute(_LOAD_CLAIMED if claimed else _LOAD, [key]).fetchall()
        return dict(zip(LOADED, rows[0], strict=False)) if rows else None

    def load_many(self, keys: Sequence[Any]) -> list[dict[str, Any]]:
        sql = f"{_LOAD_ANY} ({', '.join(['?'] * len(keys))})"
        return [dict(zip(LOADED, row, strict=True)) for row in self.raw().execute(sql, keys)]
