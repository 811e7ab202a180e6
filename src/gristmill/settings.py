"""gristmill's own settings, in one typed place, read from ``GRISTMILL_*`` environment variables.

=============================  ==========================================  ========================
variable                       meaning                                     default
=============================  ==========================================  ========================
``GRISTMILL_DATA_DIR``         where the SQLite database, inputs and       ``./gristmill-data``
                               outputs live
``GRISTMILL_DATABASE_URL``     ``sqlite:///path`` or                       SQLite in the data dir
                               ``postgres://user@host:port/name``
``GRISTMILL_STORE``            where runs are kept: ``sql`` (the           ``sql``
                               database above), ``memory`` (this process
                               only, for tests) or ``module:factory``
``GRISTMILL_STORAGE``          where run files and data files are kept:    ``local``
                               ``local`` (the data dir), ``s3``, ``django``
                               (Django's ``STORAGES``) or ``module:func``
``GRISTMILL_S3_BUCKET``        the bucket, with ``GRISTMILL_STORAGE=s3``   none (needed with s3)
``GRISTMILL_S3_ENDPOINT_URL``  the S3-compatible server's address          AWS's
``GRISTMILL_S3_REGION``        the bucket's region                         boto3's default
``GRISTMILL_S3_PREFIX``        a key prefix for gristmill's objects        none
``GRISTMILL_PIPELINES``        comma-separated pipeline specs (dotted      the demo pipelines
                               paths, ``.py`` or ``.yaml`` files)
``GRISTMILL_WORKERS``          local worker processes                      CPU count
``GRISTMILL_QUEUES``           comma-separated queues workers take from    every queue
``GRISTMILL_LEASE_SECONDS``    how long a claim lasts without a heartbeat  ``30``
``GRISTMILL_DRAIN_SECONDS``    how long SIGTERM lets running steps finish  ``30``
``GRISTMILL_KILL_GRACE``       seconds between a cooperative stop and      ``5``
                               killing the step's processes
``GRISTMILL_ALLOWED_HOSTS``    host names the web server answers to,      ``localhost,127.0.0.1,
                               comma-separated                             [::1]``
``GRISTMILL_SECRET_KEY``       Django's secret key                         random, kept in the
                                                                           data dir
``GRISTMILL_SQLITE_SYNC``      ``normal``: commits survive any crash of    ``normal``
                               gristmill's processes; ``full``: also an
                               OS crash or power loss (an fsync per commit)
``GRISTMILL_FETCH_TIMEOUT``    seconds a URL input may take to download,   ``30``
                               lookups and redirects included
``GRISTMILL_FETCH_ALLOW``      networks that URL inputs may reach although none: public
                               not public, comma-separated CIDR            addresses only
                               (``10.1.0.0/16``), for intranets
GRISTMILL_DATAFILE_MAX_SIZE    largest data file a user may upload, in     ``104857600``
                               bytes                                       (100 MiB)
``GRISTMILL_PRUNE_INTERVAL``   seconds between two prunes by the workers'  ``600``
                               supervisor (expired runs removed)
``GRISTMILL_READ_TIMEOUT``     seconds ``serve`` waits for a request's     ``20``
                               headers, and for the next bytes of its body
``GRISTMILL_BODY_MIN_RATE``    bytes per second a request body must        ``1024``
                               average once its first
                               ``GRISTMILL_READ_TIMEOUT`` seconds are over
``GRISTMILL_BODIES_PER_CLIENT`` request bodies one client address may be   ``8``
                               sending at once
``GRISTMILL_SITE_URL``         the site's address, for links in            none: relative links
                               notifications (``https://mill.example``)
``GRISTMILL_EMAIL_HOST``       the SMTP server notifications go through    none: no e-mail
``GRISTMILL_EMAIL_PORT``       its port                                    ``25``
``GRISTMILL_EMAIL_USER``       user name and password for it, if needed    none
``GRISTMILL_EMAIL_PASSWORD``
``GRISTMILL_EMAIL_TLS``        ``1`` to use STARTTLS                       off
``GRISTMILL_EMAIL_FROM``       the notifications' sender address           ``gristmill@localhost``
``GRISTMILL_WEBHOOK_SECRET``   the key webhooks are signed with (HMAC)     none
``GRISTMILL_WEBHOOKS``         URLs called when any run ends, comma-       none
                               separated
``GRISTMILL_NOTIFY_ATTEMPTS``  most attempts to deliver a notification     ``5``
``GRISTMILL_NOTIFY_BACKOFF``   seconds before the second attempt, doubling ``30``
                               after each
``GRISTMILL_NOTIFY_TIMEOUT``   seconds one webhook or e-mail attempt takes ``10``
``GRISTMILL_EXECUTOR``         what runs queued units: ``local`` (worker   ``local``
                               processes on this machine) or ``celery``
                               (Celery workers on a broker)
``GRISTMILL_BROKER_URL``       the Celery broker: ``redis://host:port/db`` none (needed with
                               or ``amqp://user:password@host:port/vhost`` ``celery``)
``GRISTMILL_RECONCILE_AFTER``  seconds a unit may stay queued before the   ``10``
                               reconciler rings for it again
``GRISTMILL_METRICS_TOKEN``    the Bearer token that lets a scraper read   none: staff only
                               ``/metrics``
``GRISTMILL_LOG_FORMAT``       ``text`` (for people) or ``json`` (one      ``text``
                               object per line, for log collectors)
``GRISTMILL_QUOTA_CONCURRENT`` runs a user may have queued or running at   none (no quota)
                               once (a user's own quota, set by staff in
                               the admin, overrides each quota)
``GRISTMILL_QUOTA_RUNS_PER_DAY`` runs a user may submit in any 24 hours    none (no quota)
``GRISTMILL_QUOTA_STORAGE_MB`` megabytes of inputs and outputs a user's     none (no quota)
                               unexpired runs may hold
``GRISTMILL_ANONYMOUS_QUOTA_*`` the same three for callers without an       the user's quota
                               account, counted by client address
                               (``_CONCURRENT``, ``_RUNS_PER_DAY``,
                               ``_STORAGE_MB``)
=============================  ==========================================  ========================

``GRISTMILL_JSON_DOCUMENT_MAX_SIZE`` (default ``16777216``, 16 MiB): the largest JSON data file
that is also kept as a JSON document in the database, searchable by a JSON path.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from gristmill.errors import ConfigurationError

DEMO_PIPELINES = ("gristmill.demo.pipelines",)
_TRUE = ("1", "true", "yes", "on")
DATAFILE_MAX_SIZE = 100 * 1024 * 1024
"""The default largest data file (``GRISTMILL_DATAFILE_MAX_SIZE``): 100 MiB."""
JSON_DOCUMENT_MAX_SIZE = 16 * 1024 * 1024
"""The default largest JSON data file kept as a JSON document
(``GRISTMILL_JSON_DOCUMENT_MAX_SIZE``): 16 MiB."""
LOG_FORMATS = ("text", "json")
"""The values of ``GRISTMILL_LOG_FORMAT``."""
EXECUTORS = ("local", "celery")
"""The values of ``GRISTMILL_EXECUTOR``."""
BROKERS = ("redis", "rediss", "amqp", "amqps")
"""The broker URL schemes the Celery executor is tested on."""


@dataclass(frozen=True)
class Settings:
    """The settings in force; build with :meth:`from_env`."""

    data_dir: Path
    database_url: str
    store: str = "sql"
    storage: str = "local"
    s3_bucket: str = ""
    s3_endpoint_url: str = ""
    s3_region: str = ""
    s3_prefix: str = ""
    pipelines: tuple[str, ...] = DEMO_PIPELINES
    workers: int = 2
    queues: tuple[str, ...] | None = None
    lease_seconds: float = 30.0
    drain_seconds: float = 30.0
    kill_grace: float = 5.0
    sqlite_sync: str = "normal"
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    secret_key: str = ""
    fetch_timeout: float = 30.0
    fetch_allow: tuple[str, ...] = ()
    datafile_max_size: int = DATAFILE_MAX_SIZE
    json_document_max_size: int = JSON_DOCUMENT_MAX_SIZE
    prune_interval: float = 600.0
    read_timeout: float = 20.0
    body_min_rate: int = 1024
    bodies_per_client: int = 8
    site_url: str = ""
    email_host: str = ""
    email_port: int = 25
    email_user: str = ""
    email_password: str = ""
    email_tls: bool = False
    email_from: str = "gristmill@localhost"
    webhook_secret: str = ""
    webhooks: tuple[str, ...] = ()
    notify_attempts: int = 5
    notify_backoff: float = 30.0
    notify_timeout: float = 10.0
    allow_python_steps: bool = False
    executor: str = "local"
    broker_url: str = ""
    reconcile_after: float = 10.0
    metrics_token: str = ""
    log_format: str = "text"
    quota_concurrent: int | None = None
    quota_runs_per_day: int | None = None
    quota_storage_mb: int | None = None
    anonymous_quota_concurrent: int | None = None
    anonymous_quota_runs_per_day: int | None = None
    anonymous_quota_storage_mb: int | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read the settings from ``environ`` (default ``os.environ``), then apply overrides."""
        env = os.environ if environ is None else environ
        data_dir = Path(env.get("GRISTMILL_DATA_DIR") or "gristmill-data").absolute()
        database_url = env.get("GRISTMILL_DATABASE_URL") or ""
        pipelines = tuple(
            p.strip() for p in env.get("GRISTMILL_PIPELINES", "").split(",") if p.strip()
        )
        queues = tuple(q.strip() for q in env.get("GRISTMILL_QUEUES", "").split(",") if q.strip())
        settings = cls(
            data_dir=data_dir,
            database_url=database_url,
            store=(env.get("GRISTMILL_STORE") or "sql").strip(),
            storage=(env.get("GRISTMILL_STORAGE") or "local").strip(),
            s3_bucket=(env.get("GRISTMILL_S3_BUCKET") or "").strip(),
            s3_endpoint_url=(env.get("GRISTMILL_S3_ENDPOINT_URL") or "").strip(),
            s3_region=(env.get("GRISTMILL_S3_REGION") or "").strip(),
            s3_prefix=(env.get("GRISTMILL_S3_PREFIX") or "").strip().strip("/"),
            pipelines=pipelines or DEMO_PIPELINES,
            workers=_number(env, "GRISTMILL_WORKERS", int, os.cpu_count() or 1),
            queues=queues or None,
            lease_seconds=_number(env, "GRISTMILL_LEASE_SECONDS", float, 30.0),
            drain_seconds=_number(env, "GRISTMILL_DRAIN_SECONDS", float, 30.0),
            kill_grace=_number(env, "GRISTMILL_KILL_GRACE", float, 5.0),
            sqlite_sync=(env.get("GRISTMILL_SQLITE_SYNC") or "normal").lower(),
            allowed_hosts=tuple(
                h.strip() for h in env.get("GRISTMILL_ALLOWED_HOSTS", "").split(",") if h.strip()
            )
            or ("localhost", "127.0.0.1", "[::1]"),
            secret_key=env.get("GRISTMILL_SECRET_KEY", ""),
            fetch_timeout=_number(env, "GRISTMILL_FETCH_TIMEOUT", float, 30.0),
            fetch_allow=tuple(
                n.strip() for n in env.get("GRISTMILL_FETCH_ALLOW", "").split(",") if n.strip()
            ),
            datafile_max_size=_number(env, "GRISTMILL_DATAFILE_MAX_SIZE", int, DATAFILE_MAX_SIZE),
            json_document_max_size=_number(
                env, "GRISTMILL_JSON_DOCUMENT_MAX_SIZE", int, JSON_DOCUMENT_MAX_SIZE
            ),
            prune_interval=_number(env, "GRISTMILL_PRUNE_INTERVAL", float, 600.0),
            read_timeout=_number(env, "GRISTMILL_READ_TIMEOUT", float, 20.0),
            body_min_rate=_number(env, "GRISTMILL_BODY_MIN_RATE", int, 1024),
            bodies_per_client=_number(env, "GRISTMILL_BODIES_PER_CLIENT", int, 8),
            site_url=(env.get("GRISTMILL_SITE_URL") or "").strip().rstrip("/"),
            email_host=(env.get("GRISTMILL_EMAIL_HOST") or "").strip(),
            email_port=_number(env, "GRISTMILL_EMAIL_PORT", int, 25),
            email_user=env.get("GRISTMILL_EMAIL_USER") or "",
            email_password=env.get("GRISTMILL_EMAIL_PASSWORD") or "",
            email_tls=(env.get("GRISTMILL_EMAIL_TLS") or "").strip().lower() in _TRUE,
            email_from=(env.get("GRISTMILL_EMAIL_FROM") or "").strip() or "gristmill@localhost",
            webhook_secret=env.get("GRISTMILL_WEBHOOK_SECRET") or "",
            webhooks=tuple(
                u.strip() for u in env.get("GRISTMILL_WEBHOOKS", "").split(",") if u.strip()
            ),
            notify_attempts=_number(env, "GRISTMILL_NOTIFY_ATTEMPTS", int, 5),
            notify_backoff=_number(env, "GRISTMILL_NOTIFY_BACKOFF", float, 30.0),
            notify_timeout=_number(env, "GRISTMILL_NOTIFY_TIMEOUT", float, 10.0),
            allow_python_steps=(env.get("GRISTMILL_ALLOW_PYTHON_STEPS") or "").strip().lower()
            in ("1", "true", "yes", "on"),
            executor=(env.get("GRISTMILL_EXECUTOR") or "local").strip().lower(),
            broker_url=(env.get("GRISTMILL_BROKER_URL") or "").strip(),
            reconcile_after=_number(env, "GRISTMILL_RECONCILE_AFTER", float, 10.0),
            metrics_token=(env.get("GRISTMILL_METRICS_TOKEN") or "").strip(),
            log_format=(env.get("GRISTMILL_LOG_FORMAT") or "text").strip().lower(),
            **_quotas(env),
        )
        settings = replace(settings, **overrides)
        if settings.sqlite_sync not in ("normal", "full"):
            raise ConfigurationError(
                f"GRISTMILL_SQLITE_SYNC must be 'normal' or 'full', not {settings.sqlite_sync!r}"
            )
        if settings.executor not in EXECUTORS:
            raise ConfigurationError(
                f"GRISTMILL_EXECUTOR must be 'local' or 'celery', not {settings.executor!r}"
            )
        if settings.storage == "s3" and not settings.s3_bucket:
            raise ConfigurationError("GRISTMILL_STORAGE=s3 needs GRISTMILL_S3_BUCKET")
        if settings.log_format not in LOG_FORMATS:
            raise ConfigurationError(
                f"GRISTMILL_LOG_FORMAT must be 'text' or 'json', not {settings.log_format!r}"
            )
        if settings.executor == "celery" and not settings.broker_url:
            raise ConfigurationError(
                "GRISTMILL_EXECUTOR=celery needs GRISTMILL_BROKER_URL "
                "(redis://host:6379/0 or amqp://user:password@host:5672//)"
            )
        if settings.broker_url and settings.broker_url.partition("://")[0] not in BROKERS:
            raise ConfigurationError(
                f"GRISTMILL_BROKER_URL must start with redis://, rediss:// or amqp://, "
                f"not {settings.broker_url!r}"
            )
        if settings.fetch_allow:
            try:
                parse_networks(",".join(settings.fetch_allow))
            except ValueError as error:
                raise ConfigurationError(f"GRISTMILL_FETCH_ALLOW: {error}") from None
        for url in settings.webhooks:
            if not url.startswith(("http://", "https://")):
                raise ConfigurationError(
                    f"GRISTMILL_WEBHOOKS must list http:// or https:// URLs, not {url!r}"
                )
        if settings.site_url and not settings.site_url.startswith(("http://", "https://")):
            raise ConfigurationError(
                f"GRISTMILL_SITE_URL must start with http:// or https://, not {settings.site_url!r}"
            )
        if not settings.database_url:
            settings = replace(
                settings, database_url=f"sqlite:///{settings.data_dir / 'gristmill.sqlite3'}"
            )
        return settings

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables, for child processes."""
        env = {
            "GRISTMILL_DATA_DIR": str(self.data_dir),
            "GRISTMILL_DATABASE_URL": self.database_url,
            "GRISTMILL_STORE": self.store,
            "GRISTMILL_STORAGE": self.storage,
            "GRISTMILL_S3_BUCKET": self.s3_bucket,
            "GRISTMILL_S3_ENDPOINT_URL": self.s3_endpoint_url,
            "GRISTMILL_S3_REGION": self.s3_region,
            "GRISTMILL_S3_PREFIX": self.s3_prefix,
            "GRISTMILL_PIPELINES": ",".join(self.pipelines),
            "GRISTMILL_WORKERS": str(self.workers),
            "GRISTMILL_LEASE_SECONDS": str(self.lease_seconds),
            "GRISTMILL_DRAIN_SECONDS": str(self.drain_seconds),
            "GRISTMILL_KILL_GRACE": str(self.kill_grace),
            "GRISTMILL_SQLITE_SYNC": self.sqlite_sync,
            "GRISTMILL_ALLOWED_HOSTS": ",".join(self.allowed_hosts),
            "GRISTMILL_FETCH_TIMEOUT": str(self.fetch_timeout),
            "GRISTMILL_FETCH_ALLOW": ",".join(self.fetch_allow),
            "GRISTMILL_DATAFILE_MAX_SIZE": str(self.datafile_max_size),
            "GRISTMILL_JSON_DOCUMENT_MAX_SIZE": str(self.json_document_max_size),
            "GRISTMILL_PRUNE_INTERVAL": str(self.prune_interval),
            "GRISTMILL_READ_TIMEOUT": str(self.read_timeout),
            "GRISTMILL_BODY_MIN_RATE": str(self.body_min_rate),
            "GRISTMILL_BODIES_PER_CLIENT": str(self.bodies_per_client),
            "GRISTMILL_SITE_URL": self.site_url,
            "GRISTMILL_EMAIL_HOST": self.email_host,
            "GRISTMILL_EMAIL_PORT": str(self.email_port),
            "GRISTMILL_EMAIL_USER": self.email_user,
            "GRISTMILL_EMAIL_PASSWORD": self.email_password,
            "GRISTMILL_EMAIL_TLS": "1" if self.email_tls else "",
            "GRISTMILL_EMAIL_FROM": self.email_from,
            "GRISTMILL_WEBHOOK_SECRET": self.webhook_secret,
            "GRISTMILL_WEBHOOKS": ",".join(self.webhooks),
            "GRISTMILL_NOTIFY_ATTEMPTS": str(self.notify_attempts),
            "GRISTMILL_NOTIFY_BACKOFF": str(self.notify_backoff),
            "GRISTMILL_NOTIFY_TIMEOUT": str(self.notify_timeout),
            "GRISTMILL_ALLOW_PYTHON_STEPS": "1" if self.allow_python_steps else "0",
            "GRISTMILL_EXECUTOR": self.executor,
            "GRISTMILL_BROKER_URL": self.broker_url,
            "GRISTMILL_RECONCILE_AFTER": str(self.reconcile_after),
            "GRISTMILL_LOG_FORMAT": self.log_format,
        }
        for field, name in QUOTA_SETTINGS.items():
            value = getattr(self, field)
            if value is not None:
                env[name] = str(value)
        if self.queues:
            env["GRISTMILL_QUEUES"] = ",".join(self.queues)
        return env


QUOTA_SETTINGS = {
    "quota_concurrent": "GRISTMILL_QUOTA_CONCURRENT",
    "quota_runs_per_day": "GRISTMILL_QUOTA_RUNS_PER_DAY",
    "quota_storage_mb": "GRISTMILL_QUOTA_STORAGE_MB",
    "anonymous_quota_concurrent": "GRISTMILL_ANONYMOUS_QUOTA_CONCURRENT",
    "anonymous_quota_runs_per_day": "GRISTMILL_ANONYMOUS_QUOTA_RUNS_PER_DAY",
    "anonymous_quota_storage_mb": "GRISTMILL_ANONYMOUS_QUOTA_STORAGE_MB",
}
"""The quota settings (fields) and their environment variables."""


def _quotas(env: Mapping[str, str]) -> dict[str, int | None]:
    """The quota settings: none unless set; an anonymous one defaults to the user's."""
    values = {field: _number(env, name, int, None) for field, name in QUOTA_SETTINGS.items()}
    for field in list(values):
        if field.startswith("anonymous_") and values[field] is None:
            values[field] = values[field.removeprefix("anonymous_")]
    return values


def _number(env: Mapping[str, str], name: str, kind: type, default: Any) -> Any:
    raw = env.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {raw!r}") from None
    if value <= 0:
        raise ConfigurationError(f"{name} must be positive, not {raw!r}")
    return value


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(text: str) -> tuple[Network, ...]:
    """Parse comma-separated networks (``"10.1.0.0/16, 127.0.0.1"``) for ``GRISTMILL_FETCH_ALLOW``.

    A bare address is a network of one. Returns the networks in order (none for an empty string).
    Raises ``ValueError`` naming the first item that is not a network.
    """
    networks = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not a network like 10.1.0.0/16") from None
    return tuple(networks)
