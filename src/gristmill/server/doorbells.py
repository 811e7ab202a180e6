"""Doorbells for the Django store: Unix sockets beside a SQLite file, LISTEN/NOTIFY on
PostgreSQL. Either way a ring only says "look at the database"."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Any, Protocol

from django.db import connections

from gristmill.engine.doorbell import SocketDoorbell


class Doorbell(Protocol):
    def ring(self) -> None: ...
    def wait(self, timeout: float) -> None: ...
    def close(self) -> None: ...


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

    def wait(self, timeout: float) -> None:
        if self._pid != os.getpid():
            self._listener, self._pid = None, os.getpid()
        if self._listener is None:
            import psycopg

            params = connections[self.alias].get_connection_params()
            params.pop("cursor_factory", None)
            params.pop("context", None)
            self._listener = psycopg.connect(**params, autocommit=True)
            self._listener.execute(f"LISTEN {self.channel}")
            return
        for _ in self._listener.notifies(timeout=max(0.0, timeout), stop_after=1):
            break

    def close(self) -> None:
        if self._listener is not None and self._pid == os.getpid():
            with contextlib.suppress(Exception):
                self._listener.close()
        self._listener = None


def doorbells_for(alias: str) -> tuple[Doorbell, Doorbell]:
    """The (work, done) doorbells for the database ``alias``."""
    settings = connections[alias].settings_dict
    if connections[alias].vendor == "postgresql":
        return PostgresDoorbell(alias, "gristmill_work"), PostgresDoorbell(alias, "gristmill_done")
    name = str(settings["NAME"])
    base = Path(f"{name}.bells")
    return SocketDoorbell(base / "work"), SocketDoorbell(base / "done")
