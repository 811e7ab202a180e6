"""A configured gristmill: settings, store, pipeline registry and file storage together."""

from __future__ import annotations

import importlib
import threading
from dataclasses import dataclass

from gristmill.engine.store import Store
from gristmill.registry import Registry
from gristmill.settings import Settings
from gristmill.storage import FilesystemStorage


@dataclass
class Service:
    """Everything the submission functions, workers and CLI need."""

    settings: Settings
    store: Store
    registry: Registry
    storage: FilesystemStorage

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        alias: str | None = None,
        migrate: bool | None = None,
    ) -> Service:
        """Set up the database (Django; SQLite is migrated unless ``migrate=False``) and load
        the configured pipelines.

        Services on different databases may share a process: each database gets a Django
        alias of its own, which the store uses (``alias`` names one instead). Inside a Django
        project (``DJANGO_SETTINGS_MODULE``) the project's settings and database are used
        whatever ``settings`` say. Raises :class:`~gristmill.errors.ConfigurationError` for a
        database that cannot be used.
        """
        open_database = importlib.import_module("gristmill.server.conf").open_database
        settings, database = open_database(settings, migrate=migrate)
        store_module = importlib.import_module("gristmill.server.store")
        store: Store = store_module.DjangoStore(alias or database)
        return cls(
            settings=settings,
            store=store,
            registry=registry if registry is not None else Registry(specs=settings.pipelines),
            storage=FilesystemStorage(settings.data_dir),
        )


_default: Service | None = None
_lock = threading.Lock()


def default_service() -> Service:
    """The process-wide service built from ``GRISTMILL_*`` settings on first use."""
    global _default
    with _lock:
        if _default is None:
            _default = Service.from_settings()
        return _default


def set_default_service(service: Service | None) -> None:
    """Make ``service`` the one the submission functions use when given none."""
    global _default
    with _lock:
        _default = service
