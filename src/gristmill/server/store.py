"""The SQL store on Django's database connections: Django supplies the connections (with its
settings, SQLite pragmas and all), the doorbells and the errors that mean "unavailable"; the
store itself (:mod:`gristmill.store.sql`) knows no Django."""

from __future__ import annotations

import contextlib
import sqlite3
from typing import Any

from django.db import OperationalError, connections

from gristmill.server.doorbells import doorbells_for
from gristmill.store.sql import SqlStore
from gristmill.store.sql.dialect import Doorbell


class DjangoConnections:
    """A :class:`~gristmill.store.sql.dialect.ConnectionSource` on the Django database
    ``alias``: each thread uses that thread's Django connection, opened by Django."""

    def __init__(self, alias: str):
        self.alias = alias
        wrapper = connections[alias]
        self.vendor: str = wrapper.vendor
        self.name: str = str(wrapper.settings_dict["NAME"])

    def connect(self) -> Any:
        wrapper = connections[self.alias]
        wrapper.ensure_connection()
        return wrapper.connection

    def close(self) -> None:
        with contextlib.suppress(Exception):
            connections[self.alias].close()

    def close_all(self) -> None:
        connections.close_all()

    def is_unavailable(self, error: BaseException) -> bool:
        if isinstance(error, OperationalError | sqlite3.OperationalError):
            return True
        try:
            import psycopg
        except ImportError:
            return False
        return isinstance(error, psycopg.OperationalError)

    def doorbells(self) -> tuple[Doorbell, Doorbell, Doorbell]:
        return doorbells_for(self.alias)


class DjangoStore(SqlStore):
    """A :class:`~gristmill.store.sql.SqlStore` on the Django database ``alias``."""

    def __init__(self, alias: str = "default"):
        self.alias = alias
        super().__init__(DjangoConnections(alias))
