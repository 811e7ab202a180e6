"""Integration fixtures: one Django configuration with a SQLite database and, when a server is
reachable, a fresh PostgreSQL database; services per backend; real worker processes."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service, set_default_service
from gristmill.authoring.registry import Registry
from gristmill.settings import Settings
from gristmill.storage import FilesystemStorage
from tests.conftest import service_absent
from tests.integration.brokers import (  # noqa: F401 - fixtures
    Broker,
    broker_for,
    private_redis,
    private_vhost,
)
from tests.integration.s3 import bucket, s3_server  # noqa: F401 - fixtures

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient

if TYPE_CHECKING:
    from django.test import Client

PIPELINES = str(Path(__file__).with_name("pipelines.py"))
HOST = "localhost"
"""The host the web pages' test clients ask for."""
PG_URL = os.environ.get("GRISTMILL_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/postgres")
LEASE = 2.0


class ServiceDatabaseRouter:
    """Sends the ORM's queries (users, sessions, tokens, data files, run lists) to the database
    of the test's service, as a deployment with its one database does. The store names its
    alias itself."""

    alias = "default"

    def db_for_read(self, model: type, **hints: Any) -> str:
        return ServiceDatabaseRouter.alias

    db_for_write = db_for_read

    def allow_relation(self, first: Any, second: Any, **hints: Any) -> bool:
        return True


def _postgres_database(template: str | None = None) -> tuple[str | None, str]:
    """Create a fresh database (a copy of the database ``template`` if given); (url, reason if
    unavailable)."""
    try:
        import psycopg
    except ImportError:
        return None, "psycopg is not installed (pip install 'gristmill[postgres]')"
    name = f"gristmill_test_{uuid.uuid4().hex[:8]}"
    try:
        with psycopg.connect(_dsn(PG_URL), autocommit=True, connect_timeout=3) as conn:
            conn.execute(f"CREATE DATABASE {name}" + (f" TEMPLATE {template}" if template else ""))
    except psycopg.OperationalError as error:
        return None, f"PostgreSQL is not reachable at {PG_URL}: {str(error).strip()}"
    return PG_URL.rsplit("/", 1)[0] + f"/{name}", ""


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def _drop_postgres(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_dsn(PG_URL), autocommit=True) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


@pytest.fixture(scope="session")
def databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Configure Django once: alias ``default`` (SQLite) and ``postgres`` (if reachable)."""
    import django
    from django.conf import settings as django_conf

    from gristmill.server.conf import database_config, django_settings, run_migrations

    data_dir = tmp_path_factory.mktemp("gristmill-data")
    sqlite_url = f"sqlite:///{data_dir / 'gristmill.sqlite3'}"
    base = Settings.from_env(
        {},
        data_dir=data_dir,
        database_url=sqlite_url,
        pipelines=(PIPELINES,),
        lease_seconds=LEASE,
        drain_seconds=2.0,
        kill_grace=1.0,
        workers=2,
    )
    pg_url, pg_reason = _postgres_database()
    config = django_settings(base)
    config["DATABASE_ROUTERS"] = [f"{__name__}.ServiceDatabaseRouter"]
    # Passwords hashed for real take a third of a second each; tests need no such strength.
    config["PASSWORD_HASHERS"] = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if pg_url:
        config["DATABASES"]["postgres"] = database_config(pg_url)
    django_conf.configure(**config)
    django.setup()
    run_migrations("default")
    if pg_url:
        run_migrations("postgres")
    info = {"settings": base, "sqlite_url": sqlite_url, "pg_url": pg_url, "pg_reason": pg_reason}
    yield info
    from django.db import connections

    connections.close_all()
    if pg_url:
        _drop_postgres(pg_url)


@pytest.fixture(scope="session")
def registry(databases: dict[str, Any]) -> Registry:
    return Registry(specs=[PIPELINES])


def _service(databases: dict[str, Any], registry: Registry, backend: str) -> Service:
    from gristmill.server.store import DjangoStore

    base: Settings = databases["settings"]
    if backend == "postgres":
        if not databases["pg_url"]:
            service_absent(databases["pg_reason"])
        settings = replace(base, database_url=databases["pg_url"])
        return Service(
            settings, DjangoStore("postgres"), registry, FilesystemStorage(base.data_dir)
        )
    return Service(base, DjangoStore("default"), registry, FilesystemStorage(base.data_dir))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(
    request: pytest.FixtureRequest, databases: dict[str, Any], registry: Registry
) -> Iterator[Service]:
    """A service on each database backend."""
    svc = _service(databases, registry, request.param)
    ServiceDatabaseRouter.alias = svc.store.alias  # type: ignore[attr-defined]
    try:
        yield svc
    finally:
        ServiceDatabaseRouter.alias = "default"
        svc.store.close()


class Workers:
    """``gristmill worker`` processes started for a test, always stopped after it."""

    def __init__(self, service: Service):
        self.service = service
        self.processes: list[subprocess.Popen[bytes]] = []
        self.env: dict[str, str] = {}
        """Settings every worker started gets (the executor's)."""
        self.executor = "local"
        self.broker: Broker | None = None

    def start(self, count: int = 1, **env: str) -> subprocess.Popen[bytes]:
        """Start ``gristmill worker`` with ``count`` worker processes; its stderr goes to
        :attr:`log`."""
        settings = self.service.settings
        environment = {**os.environ, **settings.to_env(), **self.env, **env}
        environment["GRISTMILL_WORKERS"] = str(count)
        self.log = Path(settings.data_dir) / f"worker-{uuid.uuid4().hex[:8]}.log"
        with self.log.open("wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "gristmill", "worker"],
                env=environment,
                start_new_session=True,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.processes.append(process)
        return process

    def stop(
        self, process: subprocess.Popen[bytes], sig: int = signal.SIGTERM, timeout: float = 20
    ) -> int:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(sig)
        try:
            return process.wait(timeout)
        finally:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        """Stop every worker started, at once and all together: the test's assertions are
        done, so a warm shutdown (a Celery worker's takes seconds) would only waste time. Tests
        of warm shutdown call :meth:`stop` themselves."""
        live = [process for process in self.processes if process.poll() is None]
        for process in live:
            cold_stop_begin(process)
        for process in live:
            cold_stop_end(process)
        self.processes.clear()


def _children(pid: int) -> list[int]:
    """The process ids of ``pid``'s children (none if it is gone)."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(child) for child in children.split()]


def _kill(pid: int) -> None:
    """SIGKILL ``pid``'s process group if it leads one, else ``pid`` alone."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    except PermissionError:
        pass


def kill_tree(pid: int) -> None:
    """SIGKILL ``pid`` and every process under it (each process group they lead too): for a
    server whose test is over, whose database and files go next."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        with contextlib.suppress(ProcessLookupError):
            os.kill(current, signal.SIGSTOP)  # stopped, it starts no process we would miss
        found.append(current)
        pending += _children(current)
    for each in found:
        _kill(each)


def cold_stop_begin(process: subprocess.Popen[bytes]) -> None:
    """Stop a ``gristmill worker`` at once: SIGTERM to its supervisor (so that it restarts
    nobody and, once its workers are gone, hands their units back and signs off), then SIGKILL
    to its children (each local worker with its steps, or the Celery worker with its pool, and
    the notifier)."""
    children = _children(process.pid)
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    for child in children:
        _kill(child)


def cold_stop_end(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """Wait for a worker :func:`cold_stop_begin` stopped; SIGKILL everything left of it after
    ``timeout`` seconds."""
    try:
        return process.wait(timeout)
    except subprocess.TimeoutExpired:
        for child in _children(process.pid):
            _kill(child)
        _kill(process.pid)
        return process.wait(timeout)
    finally:
        _kill(process.pid)


def cold_stop(process: subprocess.Popen[bytes], timeout: float = 20) -> int:
    """:func:`cold_stop_begin`, then :func:`cold_stop_end`."""
    cold_stop_begin(process)
    return cold_stop_end(process, timeout)


@contextlib.contextmanager
def serving(service: Service) -> Iterator[Service]:
    """Make ``service`` the one the whole site (pages and API) uses, for the block."""
    set_default_service(service)
    try:
        yield service
    finally:
        set_default_service(None)


@pytest.fixture
def site(service: Service) -> Iterator[Service]:
    """The test's service, made the one the whole site (pages and API) uses."""
    with serving(service):
        yield service


@pytest.fixture
def web(site: Service) -> Client:
    """Django's test client on the whole site, whose views use the test's service."""
    from django.test import Client

    return Client(HTTP_HOST=HOST)


@pytest.fixture
def workers(service: Service) -> Iterator[Workers]:
    pool = Workers(service)
    yield pool
    pool.stop_all()


EXECUTORS = ["local", "celery-redis", "celery-rabbitmq"]
"""The executors the engine's contract tests run on: local workers, and Celery workers on a
private Redis and on a private RabbitMQ virtual host."""

RECONCILE_AFTER = 1.0


def use_executor(request: pytest.FixtureRequest, pool: Workers, executor: str) -> None:
    """Make ``pool`` start workers of ``executor`` (one of :data:`EXECUTORS`), and the test's
    service send them its runs; skips (fails in CI) if the broker cannot be had."""
    pool.executor = executor
    if executor == "local":
        return
    from gristmill.app.service import make_bell

    broker = broker_for(executor.partition("-")[2], request)
    settings = replace(
        pool.service.settings,
        executor="celery",
        broker_url=broker.url,
        reconcile_after=RECONCILE_AFTER,
    )
    store = pool.service.store
    store.bell = make_bell(settings)
    request.addfinalizer(lambda: setattr(store, "bell", None))
    pool.broker = broker
    pool.env.update(
        GRISTMILL_EXECUTOR="celery",
        GRISTMILL_BROKER_URL=broker.url,
        GRISTMILL_RECONCILE_AFTER=str(RECONCILE_AFTER),
    )


@pytest.fixture(params=EXECUTORS)
def any_workers(request: pytest.FixtureRequest, workers: Workers) -> Workers:
    """:func:`workers`, of each executor in turn."""
    use_executor(request, workers, request.param)
    return workers


def wait_until(condition: Callable[[], Any], timeout: float = 20, message: str = "") -> Any:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {message or condition}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)


@pytest.fixture
def control(tmp_path: Path) -> Path:
    """A directory through which a test and its pipelines' steps signal each other."""
    path = tmp_path / "control"
    path.mkdir()
    return path


# -- the REST API's test clients ---------------------------------------------------------


@pytest.fixture
def client(site: Service) -> TestClient:
    """A test client of the API, whose views use the test's service."""
    from ninja.testing import TestClient

    from gristmill.server.api import api

    return TestClient(api)


@pytest.fixture
def wire(client: TestClient) -> Iterator[Client]:
    """Django's test client: whole HTTP requests, parsed by Django, to gristmill's URLs (the
    API's answers link to pages, so the pages' URLs are there too)."""
    from django.test import Client, override_settings

    with override_settings(ROOT_URLCONF="gristmill.server.urls", ALLOWED_HOSTS=["testserver"]):
        yield Client()


@pytest.fixture
def fresh_postgres() -> Iterator[str]:
    """A new, empty PostgreSQL database, dropped after the test."""
    url, reason = _postgres_database()
    if url is None:
        service_absent(reason)
        raise AssertionError("unreachable")  # service_absent skips or fails
    try:
        yield url
    finally:
        _drop_postgres(url)
