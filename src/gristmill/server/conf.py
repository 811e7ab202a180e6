"""Turn gristmill settings into Django settings, and set Django up outside a Django project."""

from __future__ import annotations

import os
import secrets
from typing import Any

import dj_database_url

from gristmill.errors import ConfigurationError
from gristmill.settings import Settings

# page_size only applies when the file is created (before WAL mode): small pages mean fewer
# bytes written per commit, and gristmill's rows are small.
SQLITE_INIT = (
    "PRAGMA page_size=1024;PRAGMA journal_mode=WAL;PRAGMA synchronous={sync};"
    "PRAGMA temp_store=MEMORY;PRAGMA cache_size=-16000"
)


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
    key = secrets.token_urlsafe(50)
    try:
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return path.read_text(encoding="utf-8").strip()
    with os.fdopen(descriptor, "w", encoding="utf-8") as out:
        out.write(key)
    return key


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
        "ROOT_URLCONF": "gristmill.server.urls",
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
    """Configure Django for gristmill if nothing else has, and return the settings in force.

    ``migrate`` creates or updates the tables; by default it does so for SQLite only (a
    PostgreSQL database is migrated on purpose, with ``gristmill migrate``).
    """
    import django
    from django.conf import settings as django_conf

    if not django_conf.configured:
        if os.environ.get("DJANGO_SETTINGS_MODULE"):
            django.setup()
        else:
            settings = settings or Settings.from_env()
            if settings.database_url.startswith("sqlite"):
                settings.data_dir.mkdir(parents=True, exist_ok=True)
            django_conf.configure(**django_settings(settings))
            django.setup()
    from django.db import DatabaseError, connections

    current = current_settings()
    engine = django_conf.DATABASES["default"]["ENGINE"]
    where = describe_database(current.database_url)
    try:
        if migrate or (migrate is None and engine.endswith("sqlite3")):
            run_migrations()
        elif "gristmill_unit" not in connections["default"].introspection.table_names():
            raise ConfigurationError(
                f"the database {where} has no gristmill tables yet: run `gristmill migrate` first"
            )
    except DatabaseError as error:
        raise ConfigurationError(f"cannot use the database {where}: {error}") from error
    return current


def describe_database(url: str) -> str:
    """The database URL without credentials, for messages."""
    scheme, _, rest = url.partition("://")
    return f"{scheme}://{rest.rsplit('@', 1)[-1]}" if rest else url


def current_settings() -> Settings:
    """The gristmill settings of the configured Django project."""
    from django.conf import settings as django_conf

    value = getattr(django_conf, "GRISTMILL", None)
    if isinstance(value, Settings):
        return value
    return Settings.from_env()


def run_migrations(alias: str = "default") -> None:
    """Create or update gristmill's tables in the database ``alias``."""
    from django.core.management import call_command

    call_command("migrate", database=alias, verbosity=0, interactive=False)
