"""A configured gristmill: settings, store, pipeline registry and file storage together.

This is the one place that composes them. The store backend is chosen by name in the settings
(``GRISTMILL_STORE``) and imported only when chosen, so that nothing below needs Django unless
the SQL store is in use:

* ``sql`` (the default): the database of ``GRISTMILL_DATABASE_URL``, through Django;
* ``memory``: :class:`~gristmill.store.memory.MemoryStore`, in this process only (tests);
* ``module:factory``: a function of yours, called as the built-in factories are
  (:data:`StoreFactory`).
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.registry import Registry
from gristmill.errors import ConfigurationError
from gristmill.settings import Settings
from gristmill.storage import FilesystemStorage, Storage
from gristmill.store.base import Store
from gristmill.store.records import Bell


class StoreFactory(Protocol):
    """Builds a store from the settings; returns the settings in force (a Django project may
    supply its own) and the store. Without ``settings`` a factory uses its defaults (the SQL
    store: those Django was configured with). ``alias`` and ``migrate`` concern SQL stores
    only."""

    def __call__(
        self, settings: Settings | None, *, alias: str | None, migrate: bool | None
    ) -> tuple[Settings, Store]: ...


def memory_store(
    settings: Settings | None, *, alias: str | None = None, migrate: bool | None = None
) -> tuple[Settings, Store]:
    """The ``memory`` store: a new, empty :class:`~gristmill.store.memory.MemoryStore`."""
    from gristmill.store.memory import MemoryStore

    return settings or Settings.from_env(), MemoryStore()


STORES: dict[str, str] = {
    "sql": "gristmill.server.conf:sql_store",  # Django: imported only when chosen
    "memory": "gristmill.app.service:memory_store",
}
"""The built-in store backends by name: where their factories are."""

EXTRAS = {
    "psycopg": "postgres",
    "celery": "celery",
    "kombu": "celery",
    "storages": "s3",
    "boto3": "s3",
    "botocore": "s3",
}
"""Which extra installs a missing top-level module."""


BELLS: dict[str, str] = {"celery": "gristmill.executors.celery:make_bell"}
"""The executors (``GRISTMILL_EXECUTOR``) whose stores announce queued units through a bell of
their own (see :attr:`~gristmill.store.base.Store.bell`), and where its factory is; imported
only when chosen."""


def make_bell(settings: Settings) -> Bell | None:
    """The store's bell for the executor the settings name (``None``: the work doorbell).
    Raises :class:`ConfigurationError` naming the extra to install if it is missing."""
    where = BELLS.get(settings.executor)
    if where is None:
        return None
    module_name, _, attribute = where.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get((error.name or "").partition(".")[0])
        if extra is None:
            raise
        raise ConfigurationError(
            f"GRISTMILL_EXECUTOR={settings.executor} needs the {extra} extra: "
            f"pip install 'gristmill[{extra}]'"
        ) from None
    return getattr(module, attribute)(settings)  # type: ignore[no-any-return]


STORAGES: dict[str, str] = {
    "local": "gristmill.app.service:local_storage",
    "s3": "gristmill.server.files:s3_storage",  # Django and django-storages: only when chosen
    "django": "gristmill.server.files:django_storage",
}
"""The built-in file storages (``GRISTMILL_STORAGE``) by name: where their factories are."""


def local_storage(settings: Settings) -> Storage:
    """The ``local`` storage: files under the data directory."""
    return FilesystemStorage(settings.data_dir)


def make_storage(settings: Settings) -> Storage:
    """The file storage the settings name (``GRISTMILL_STORAGE``): a built-in name or
    ``module:function`` (called with the settings). Raises :class:`ConfigurationError` naming
    the setting, or the extra to install when the storage needs a module that is missing."""
    name = settings.storage
    module_name, _, attribute = STORAGES.get(name, name).partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"GRISTMILL_STORAGE must be 'local', 's3', 'django' or 'module:function', not {name!r}"
        )
    try:
        module = importlib.import_module(module_name)
        factory = getattr(module, attribute, None)
        if not callable(factory):
            raise ConfigurationError(
                f"GRISTMILL_STORAGE {name!r}: module {module_name!r} has no function {attribute!r}"
            )
        return factory(settings)  # type: ignore[no-any-return]
    except ModuleNotFoundError as error:  # on import, or by a factory importing lazily
        extra = EXTRAS.get((error.name or "").partition(".")[0])
        if extra is not None:
            raise ConfigurationError(
                f"GRISTMILL_STORAGE={name} needs the {extra} extra: "
                f"pip install 'gristmill[{extra}]'"
            ) from None
        raise ConfigurationError(
            f"GRISTMILL_STORAGE {name!r}: cannot import {error.name!r}"
        ) from None


def store_factory(name: str) -> StoreFactory:
    """The factory of the store backend ``name``: a built-in name, or ``module:function``,
    imported now. Raises :class:`ConfigurationError` naming the setting, or the extra to
    install when the backend needs a module that is missing."""
    module_name, _, attribute = STORES.get(name, name).partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"GRISTMILL_STORE must be 'sql', 'memory' or 'module:function', not {name!r}"
        )
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = EXTRAS.get((error.name or "").partition(".")[0])
        if extra is not None:
            raise ConfigurationError(
                f"the store {name!r} needs the {extra} extra: pip install 'gristmill[{extra}]'"
            ) from None
        raise ConfigurationError(
            f"GRISTMILL_STORE {name!r}: cannot import {error.name!r}"
        ) from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigurationError(
            f"GRISTMILL_STORE {name!r}: module {module_name!r} has no function {attribute!r}"
        )
    return factory  # type: ignore[no-any-return]


@dataclass
class Service:
    """Everything the submission functions, workers and CLI need."""

    settings: Settings
    store: Store
    registry: Registry
    storage: Storage

    @classmethod
    def from_settings(
        cls,
        settings: Settings | None = None,
        *,
        registry: Registry | None = None,
        alias: str | None = None,
        migrate: bool | None = None,
    ) -> Service:
        """Open the store the settings name (``GRISTMILL_STORE``) and load the configured
        pipelines.

        With the SQL store, services on different databases may share a process: each
        database gets a Django alias of its own, which the store uses (``alias`` names one
        instead). Inside a Django project (``DJANGO_SETTINGS_MODULE``) the project's settings
        and database are used whatever ``settings`` say. Raises
        :class:`~gristmill.errors.ConfigurationError` for an unknown or uninstallable store, or
        a database that cannot be used.
        """
        # Without settings, the SQL store uses those Django was configured with, if it was.
        name = (settings or Settings.from_env()).store
        settings, store = store_factory(name)(settings, alias=alias, migrate=migrate)
        store.bell = make_bell(settings)
        return cls(
            settings=settings,
            store=store,
            registry=registry if registry is not None else Registry(specs=settings.pipelines),
            storage=make_storage(settings),
        )

    @classmethod
    def in_memory(
        cls, pipelines: Registry | Iterable[Pipeline], data_dir: Path | str, **settings: Any
    ) -> Service:
        """A service on a new :class:`~gristmill.store.memory.MemoryStore`, offering
        ``pipelines``, with run files under ``data_dir``: no database and no Django, for tests.
        ``settings`` override :class:`~gristmill.settings.Settings` fields (``lease_seconds``)."""
        from gristmill.store.memory import MemoryStore

        config = Settings.from_env(
            {}, data_dir=Path(data_dir).absolute(), store="memory", **settings
        )
        registry = pipelines if isinstance(pipelines, Registry) else Registry(pipelines)
        return cls(config, MemoryStore(), registry, make_storage(config))

    def require_shared_store(self, who: str) -> None:
        """Raise :class:`ConfigurationError` unless several processes can share the store;
        ``who`` names what needs that ("local worker processes")."""
        if not self.store.supports_processes:
            raise ConfigurationError(
                f"{who} cannot share the {self.settings.store!r} store: it keeps runs in one "
                "process; set GRISTMILL_STORE=sql"
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
