"""Turn gristmill settings into Django settings, and set Django up outside a Django project."""

from __future__ import annotations

import contextlib
import fcntl
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from typing import Any

import dj_database_url

from gristmill.errors import ConfigurationError
from gristmill.settings import Settings
from gristmill.store.base import Store

# page_size only applies when the file is created (before WAL mode): small pages mean fewer
# bytes written per commit, and gristmill's rows are small.
SQLITE_INIT = (
    "PRAGMA page_size=1024;PRAGMA journal_mode=WAL;PRAGMA synchronous={sync};"
    "PRAGMA temp_store=MEMORY;PRAGMA cache_size=-16000"
)

MIGRATION_LOCK_KEY = 0x67726973746D696C
"""The PostgreSQL advisory lock that migrations take turns on ("gristmil" in ASCII)."""


def database_config(url: str, *, sqlite_sync: str = "normal") -> dict[str, Any]:
    """Return a Django ``DATABASES`` entry for a ``sqlite:///`` or ``postgres://`` URL.

    SQLite runs in WAL mode with a busy timeout and ``BEGIN IMMEDIATE`` transactions, so that
    concurrent writers queue up instead of failing; PostgreSQL keeps persistent connections.
    """
    try:
        config: dict[str, Any] = dict(dj_database_url.parse(url))
    except Exception as error:  # the library raises several types for a bad URL
        raise ConfigurationError(f"GRISTMILL_DATABASE_URL {url!r} is not valid: {error}") from None
    engine = config["ENGINE"]
    # Persistent connections: opening one per web request costs milliseconds.
    config["CONN_MAX_AGE"] = None
    if engine == "django.db.backends.sqlite3":
        config["OPTIONS"] = {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": SQLITE_INIT.format(sync=sqlite_sync.upper()),
        }
    elif engine in ("django.db.backends.postgresql", "django.contrib.gis.db.backends.postgis"):
        try:
            import psycopg  # noqa: F401
        except ImportError:
            raise ConfigurationError(
                "PostgreSQL needs the postgres extra: pip install 'gristmill[postgres]'"
            ) from None
        config["CONN_MAX_AGE"] = None
        config["CONN_HEALTH_CHECKS"] = True
    else:
        raise ConfigurationError(f"unsupported database {url!r}: use sqlite:/// or postgres://")
    return config


def secret_key(settings: Settings) -> str:
    """``GRISTMILL_SECRET_KEY``, or a random key made on first use and kept (mode 0600) in the
    data directory, so that sessions survive restarts and no two installs share a key."""
    if settings.secret_key:
        return settings.secret_key
    path = settings.data_dir / "secret_key"
    try:
        return path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        pass
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    # Written whole to a private file, then linked into place: a process starting at the same
    # moment finds either no key or the complete key, never an empty file.
    descriptor, draft = tempfile.mkstemp(prefix=".secret_key-", dir=settings.data_dir)
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out:
            out.write(secrets.token_urlsafe(50))
        with contextlib.suppress(FileExistsError):  # another process made it first
            os.link(draft, path)
    finally:
        os.unlink(draft)
    return path.read_text(encoding="utf-8").strip()


def django_settings(settings: Settings) -> dict[str, Any]:
    """The Django settings of a stand-alone gristmill (server, workers, ``gristmill run``)."""
    return {
        "DATABASES": {
            "default": database_config(settings.database_url, sqlite_sync=settings.sqlite_sync)
        },
        "INSTALLED_APPS": [
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django.contrib.staticfiles",
            "ninja",  # serves the API docs page's assets locally, not from a CDN
            "gristmill.server",
        ],
        "MIDDLEWARE": [
            "gristmill.server.middleware.ChunkedBodyMiddleware",
            "gristmill.server.middleware.ContentSecurityPolicyMiddleware",
            "django.middleware.security.SecurityMiddleware",
            "whitenoise.middleware.WhiteNoiseMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
            "django.middleware.clickjacking.XFrameOptionsMiddleware",
        ],
        "ROOT_URLCONF": "gristmill.server.root_urls",
        "TEMPLATES": [
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "DIRS": [],
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
        ],
        "STATIC_URL": "/static/",
        "CSRF_FAILURE_VIEW": "gristmill.server.web.views.csrf_failure",
        "LOGIN_URL": "gristmill-web:sign-in",
        "LOGIN_REDIRECT_URL": "gristmill-web:pipelines",
        "LOGOUT_REDIRECT_URL": "gristmill-web:pipelines",
        # Static files are served from the installed apps by WhiteNoise: no build step.
        "WHITENOISE_USE_FINDERS": True,
        "ALLOWED_HOSTS": list(settings.allowed_hosts),
        "USE_TZ": True,
        "TIME_ZONE": "UTC",
        "DEFAULT_AUTO_FIELD": "django.db.models.BigAutoField",
        "SECRET_KEY": secret_key(settings),
        "GRISTMILL": settings,
    }


def setup(settings: Settings | None = None, *, migrate: bool | None = None) -> Settings:
    """Configure Django for gristmill if nothing else has, make the database of ``settings``
    ready (see :func:`open_database`) and return the settings in force."""
    return open_database(settings, migrate=migrate)[0]


def open_database(
    settings: Settings | None = None, *, migrate: bool | None = None
) -> tuple[Settings, str]:
    """Configure Django for gristmill if nothing else has, and make a database ready; return
    the settings in force and the Django alias of their database.

    The settings in force are ``settings``, or by default those Django was configured with;
    inside a Django project (``DJANGO_SETTINGS_MODULE``) always the project's, on its
    ``default`` database. Otherwise each database gets an alias of its own
    (:func:`database_alias`), so that services on different databases share the process.

    ``migrate`` creates or updates the tables; by default it does so for SQLite only (a
    PostgreSQL database is migrated on purpose, with ``gristmill migrate``). Raises
    :class:`ConfigurationError` for a database that cannot be used or has no tables yet.
    """
    import django
    from django.conf import settings as django_conf

    if not django_conf.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        settings = settings or Settings.from_env()
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        django_conf.configure(**django_settings(settings))
    from django.apps import apps

    if not apps.ready:  # a project's settings may have been read already, its apps not loaded
        django.setup()
    from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections

    if settings is None or getattr(django_conf, "SETTINGS_MODULE", None):
        settings, alias = current_settings(), DEFAULT_DB_ALIAS
    else:
        if settings.database_url.startswith("sqlite"):
            settings.data_dir.mkdir(parents=True, exist_ok=True)
        alias = database_alias(settings)
    where = describe_database(settings.database_url)
    try:
        if migrate or (migrate is None and connections[alias].vendor == "sqlite"):
            run_migrations(alias)
        elif "gristmill_unit" not in connections[alias].introspection.table_names():
            raise ConfigurationError(
                f"the database {where} has no gristmill tables yet: run `gristmill migrate` first"
            )
    except DatabaseError as error:
        raise ConfigurationError(f"cannot use the database {where}: {error}") from error
    return settings, alias


_aliases = threading.Lock()


def database_alias(settings: Settings) -> str:
    """The Django alias of the database ``settings.database_url``: the alias already configured
    for that database (``default`` for the settings Django was configured with), else a new
    one, ``gristmill-<n>``, added for it and kept for the life of the process.

    A database keeps the connection options of its first alias (``GRISTMILL_SQLITE_SYNC``).
    """
    from django.db import connections

    config = database_config(settings.database_url, sqlite_sync=settings.sqlite_sync)
    wanted = _identity(config)
    with _aliases:
        for alias, existing in connections.settings.items():
            if _identity(existing) == wanted:
                return str(alias)
        number = len(connections.settings) + 1
        while f"gristmill-{number}" in connections.settings:
            number += 1
        alias = f"gristmill-{number}"
        connections.settings[alias] = config
        connections.configure_settings(connections.settings)  # fills in Django's defaults
        return alias


def _identity(config: dict[str, Any]) -> tuple[str, ...]:
    """What makes two ``DATABASES`` entries the same database."""
    engine, name = str(config.get("ENGINE", "")), str(config.get("NAME") or "")
    if engine.endswith("sqlite3"):
        name = os.path.abspath(name)
    return (engine, name, *(str(config.get(key) or "") for key in ("HOST", "PORT", "USER")))


def describe_database(url: str) -> str:
    """The database URL without credentials, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if rest else url


def current_settings() -> Settings:
    """The gristmill settings of the configured Django project: its ``GRISTMILL`` setting (a
    stand-alone gristmill's, made by :func:`django_settings`), else :func:`project_settings`
    (a host project's)."""
    from django.conf import settings as django_conf

    value = getattr(django_conf, "GRISTMILL", None)
    if isinstance(value, Settings):
        return value
    return project_settings()


_project: Settings | None = None


def project_settings() -> Settings:
    """The gristmill settings of a Django project that installs gristmill as an app: the
    project's ``GRISTMILL_*`` settings, over the ``GRISTMILL_*`` environment variables of the
    same names. A setting may be a string as in the environment, or a value of its kind: a
    number, a bool, a path, a list or tuple (for the comma-separated ones). The database is
    the project's ``default`` one (``GRISTMILL_DATABASE_URL`` is not used: the settings name
    that database, without its password, for messages). Read once; raises
    :class:`ConfigurationError` naming a setting that is wrong."""
    global _project
    if _project is None:
        from django.conf import settings as django_conf

        environ = dict(os.environ)
        for name in dir(django_conf):
            if name.startswith("GRISTMILL_"):
                value = _as_text(getattr(django_conf, name))
                if value is not None:
                    environ[name] = value
        environ["GRISTMILL_DATABASE_URL"] = _described(django_conf.DATABASES.get("default", {}))
        _project = Settings.from_env(environ)
    return _project


def _described(config: dict[str, Any]) -> str:
    engine, name = str(config.get("ENGINE", "")), str(config.get("NAME") or "")
    if engine.endswith("sqlite3"):
        return f"sqlite:///{name}"
    scheme = "postgres" if "postgresql" in engine or "postgis" in engine else engine
    user = f"{config['USER']}@" if config.get("USER") else ""
    port = f":{config['PORT']}" if config.get("PORT") else ""
    return f"{scheme}://{user}{config.get('HOST') or ''}{port}/{name}"


def _as_text(value: object) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else ""
    if isinstance(value, list | tuple):
        return ",".join(str(item) for item in value)
    return str(value)


def forget_project_settings(**_: object) -> None:
    """Read :func:`project_settings` again on next use (after a test changed them)."""
    global _project
    _project = None


def run_migrations(alias: str = "default") -> None:
    """Create or update gristmill's tables in the database ``alias``.

    Processes migrating the same database at once take turns (:func:`migration_lock`); each
    one after the first finds the migrations applied and has nothing left to do.
    """
    from django.core.management import call_command

    with migration_lock(alias):
        call_command("migrate", database=alias, verbosity=0, interactive=False)


@contextlib.contextmanager
def migration_lock(alias: str) -> Iterator[None]:
    """Hold, across processes, the lock that migrations of the database ``alias`` take turns
    on: an exclusive ``flock`` on the file beside a SQLite database that the store's writers
    also take turns on (so writes wait while the schema changes), or PostgreSQL's session
    advisory lock :data:`MIGRATION_LOCK_KEY`. Blocks until the lock is free."""
    from django.db import Error, connections

    connection = connections[alias]
    if connection.vendor == "sqlite":
        # Taken before the connection is first used: on a new database, creating the file and
        # switching it to WAL mode take turns too. server/store.py gives the driver this name.
        descriptor = os.open(
            f"{connection.settings_dict['NAME']}.lock", os.O_RDWR | os.O_CREAT, 0o600
        )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            yield
        finally:
            os.close(descriptor)  # which releases the lock
    elif connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
        try:
            yield
        finally:
            # A broken connection has lost the lock with its session already.
            with contextlib.suppress(Error), connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    else:
        yield


def sql_store(
    settings: Settings | None, *, alias: str | None = None, migrate: bool | None = None
) -> tuple[Settings, Store]:
    """The ``sql`` store (:data:`gristmill.app.service.STORES`): Django set up on the
    settings' database (SQLite is migrated unless ``migrate=False``), and a
    :class:`~gristmill.server.store.DjangoStore` on ``alias``, or on the Django alias of that
    database when ``alias`` is None."""
    from gristmill.server.store import DjangoStore

    settings, database = open_database(settings, migrate=migrate)
    return settings, DjangoStore(alias or database)
