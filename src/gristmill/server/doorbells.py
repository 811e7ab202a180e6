"""Doorbells for the SQL store on Django's connections: Unix sockets for a SQLite file,
LISTEN/NOTIFY on PostgreSQL. Either way a ring only says "look at the database".

Three channels: ``work`` (a unit was queued), ``done`` (a run ended) and ``cancel`` (a running
run was asked to stop: the watchdog of the worker holding it looks at once)."""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from django.db import connections

from gristmill.engine.doorbell import SocketDoorbell
from gristmill.errors import ConfigurationError, StoreUnavailableError
from gristmill.store.sql.dialect import Doorbell


class PostgresDoorbell:
    """One LISTEN/NOTIFY channel; listening uses a dedicated autocommit connection."""

    def __init__(self, alias: str, channel: str):
        self.alias = alias
        self.channel = channel
        self._listener: Any = None
        self._pid = os.getpid()

    def ring(self) -> None:
        with connections[self.alias].cursor() as cursor:
            cursor.execute(f"NOTIFY {self.channel}")

    def wait(self, timeout: float) -> bool:
        """Wait for a ring; True if notified. The first call (and the first after a lost
        connection) only starts listening and returns True at once, since rings sent before it
        were not heard.

        Raises :class:`StoreUnavailableError` if the database cannot be reached; the next call
        connects again.
        """
        import psycopg

        if self._pid != os.getpid():
            self._listener, self._pid = None, os.getpid()
        if self._listener is not None:
            try:
                for _ in self._listener.notifies(timeout=max(0.0, timeout), stop_after=1):
                    return True
                return False
            except psycopg.OperationalError:
                self.close()  # e.g. the server restarted: listen again on a new connection
        try:
            params = connections[self.alias].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            # The watchdog listens between its looks at a running step: never hang on a
            # server that does not answer.
            params.setdefault("connect_timeout", 5)
            self._listener = psycopg.connect(**params, autocommit=True)
            self._listener.execute(f"LISTEN {self.channel}")
        except psycopg.OperationalError as error:
            self.close()
            raise StoreUnavailableError(f"the database is unavailable: {error}") from error
        return True

    def close(self) -> None:
        if self._listener is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                self._listener.close()
        self._listener = None


def doorbells_for(alias: str) -> tuple[Doorbell, Doorbell, Doorbell]:
    """The (work, done, cancel) doorbells for the database ``alias``."""
    settings = connections[alias].settings_dict
    if connections[alias].vendor == "postgresql":
        return (
            PostgresDoorbell(alias, "gristmill_work"),
            PostgresDoorbell(alias, "gristmill_done"),
            PostgresDoorbell(alias, "gristmill_cancel"),
        )
    # Unix socket paths are limited to about 100 bytes, so the sockets live in a short
    # directory of their own, named for the database file and private to this user.
    database = os.path.realpath(str(settings["NAME"]))
    digest = hashlib.sha256(database.encode("utf-8")).hexdigest()[:16]
    base = Path(tempfile.gettempdir()) / f"gristmill-{os.getuid()}-{digest}"
    base.mkdir(mode=0o700, exist_ok=True)
    if base.stat().st_uid != os.getuid():
        raise ConfigurationError(
            f"{base} belongs to another user; set TMPDIR to a private directory"
        )
    work, done, cancel = (SocketDoorbell(base / name) for name in ("work", "done", "cancel"))
    return work, done, cancel
