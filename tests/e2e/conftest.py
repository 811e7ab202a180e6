"""End-to-end fixtures: a real ``gristmill serve`` on a free port, per database."""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from gristmill.states import RunState
from tests.conftest import service_absent
from tests.integration.conftest import (
    PIPELINES,
    _drop_postgres,
    _postgres_database,
    kill_tree,
    wait_until,
)
from tests.integration.s3 import s3_server  # noqa: F401 - fixture

E2E_PIPELINES = str(Path(__file__).with_name("pipelines.py"))
CHROMIUM = os.environ.get("GRISTMILL_TEST_CHROMIUM", "/usr/bin/chromium")
# Flags for a sandboxed, offline machine: no background traffic, no GPU, no first-run UI.
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@dataclass
class Server:
    """A running ``gristmill serve``."""

    url: str
    data_dir: Path
    process: subprocess.Popen[str]
    log: Path
    database_url: str | None = None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a gristmill command working on this server's database."""
        env = _clean_env(GRISTMILL_DATA_DIR=str(self.data_dir), **extra)
        if self.database_url:
            env["GRISTMILL_DATABASE_URL"] = self.database_url
        return env

    def command(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        """Run ``gristmill ARGS`` on this server's database (``manage``, ``token``...)."""
        return subprocess.run(
            [sys.executable, "-m", "gristmill", *args],
            env=self.env(**env),
            capture_output=True,
            text=True,
            timeout=60,
        )

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=30)


def _clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    return {**env, **extra}


class Templates:
    """Databases migrated once per test process, copied for each server that needs no first
    start of its own (a migration takes seconds; a copy, a fraction of one): a SQLite file, and
    a PostgreSQL template database."""

    def __init__(self) -> None:
        self.directory: Path | None = None
        self.sqlite: Path | None = None
        self.postgres: str | None = None

    def close(self) -> None:
        """Drop the PostgreSQL template and forget the SQLite one."""
        if self.postgres:
            _drop_postgres(self.postgres)
        self.directory = self.sqlite = self.postgres = None

    def _migrate(self, data_dir: Path, database_url: str | None = None) -> None:
        env = _clean_env(GRISTMILL_DATA_DIR=str(data_dir))
        if database_url:
            env["GRISTMILL_DATABASE_URL"] = database_url
        subprocess.run(
            [sys.executable, "-m", "gristmill", "migrate", "--data-dir", str(data_dir)],
            env=env,
            check=True,
            capture_output=True,
        )

    def sqlite_into(self, data_dir: Path) -> None:
        """Put a migrated SQLite database in ``data_dir`` (where ``gristmill serve`` looks)."""
        assert self.directory is not None, "the templates fixture is not set up"
        if self.sqlite is None:
            self._migrate(self.directory / "sqlite")
            self.sqlite = self.directory / "sqlite" / "gristmill.sqlite3"
        data_dir.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(self.sqlite, data_dir / self.sqlite.name)

    def postgres_database(self) -> tuple[str | None, str]:
        """A new migrated PostgreSQL database, as :func:`_postgres_database` gives a new
        empty one: (url, reason if unavailable)."""
        assert self.directory is not None, "the templates fixture is not set up"
        if self.postgres is None:
            url, reason = _postgres_database()
            if url is None:
                return None, reason
            self._migrate(self.directory / "postgres", url)
            self.postgres = url
        return _postgres_database(template=self.postgres.rsplit("/", 1)[1])


TEMPLATES = Templates()


@pytest.fixture(scope="session", autouse=True)
def templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Templates]:
    """The test process's :class:`Templates`, dropped at the end of the session."""
    TEMPLATES.directory = tmp_path_factory.mktemp("templates")
    yield TEMPLATES
    TEMPLATES.close()


def start_server(
    data_dir: Path,
    database_url: str | None = None,
    workers: int = 1,
    pipelines: tuple[str, ...] = (PIPELINES, E2E_PIPELINES),
    settings: dict[str, str] | None = None,
    migrated: bool = False,
) -> Server:
    """Start ``gristmill serve --port 0`` offering ``pipelines`` and wait for the line that
    gives its URL. ``settings`` are more ``GRISTMILL_*`` variables for it. ``migrated``: the
    database is migrated already (a PostgreSQL one from :meth:`Templates.postgres_database`),
    or, on SQLite, is to be copied from the template rather than made on first start."""
    env = _clean_env(
        GRISTMILL_LEASE_SECONDS="5",
        GRISTMILL_DRAIN_SECONDS="5",
        GRISTMILL_KILL_GRACE="1",
        **(settings or {}),
    )
    if migrated and not database_url:
        TEMPLATES.sqlite_into(data_dir)
    if database_url and not migrated:
        env["GRISTMILL_DATABASE_URL"] = database_url
        # With the server's data directory: the default, ./gristmill-data, is the checkout's.
        subprocess.run(
            [sys.executable, "-m", "gristmill", "migrate", "--data-dir", str(data_dir)],
            env=env,
            check=True,
            capture_output=True,
        )
    if database_url:
        env["GRISTMILL_DATABASE_URL"] = database_url
    log = data_dir / "serve.log"
    with log.open("w") as errors:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "gristmill",
                "serve",
                "--port",
                "0",
                "--workers",
                str(workers),
                "--data-dir",
                str(data_dir),
                *(option for spec in pipelines for option in ("--pipelines", spec)),
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=errors,
            text=True,
            start_new_session=True,
        )
    address = served_address(process)
    if address is None:
        stop_server(process)
        pytest.fail(f"gristmill serve did not start:\n{log.read_text()}")
    return Server(address, data_dir, process, log, database_url)


def served_address(process: subprocess.Popen[str], timeout: float = 60) -> str | None:
    """The address in the line ``gristmill serve`` prints once it listens (``None`` if it
    exits or does not print it within ``timeout`` seconds)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.5)
        if ready:
            line = process.stdout.readline()
            if line.startswith("gristmill serving "):
                return line.split()[2]
            if not line and process.poll() is not None:
                break
    return None


def stop_server(process: subprocess.Popen[str]) -> int | None:
    """SIGTERM, then SIGKILL of the whole session if it does not stop in time."""
    with contextlib.suppress(ProcessLookupError):
        process.send_signal(signal.SIGTERM)
    try:
        return process.wait(30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return None
    finally:
        if process.stdout is not None:
            process.stdout.close()


def kill_server(process: subprocess.Popen[str]) -> None:
    """Stop a server at once, with its workers (SIGKILL): for fixtures, once their tests are
    over; the tests of a graceful stop use :func:`stop_server`."""
    kill_tree(process.pid)
    process.wait(30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A live server with one worker, on SQLite and on a fresh PostgreSQL database."""
    database_url = None
    if request.param == "postgres":
        database_url, reason = TEMPLATES.postgres_database()
        if not database_url:
            service_absent(reason)
    data_dir = tmp_path_factory.mktemp(f"serve-{request.param}")
    running = start_server(data_dir, database_url, migrated=True)
    yield running
    kill_server(running.process)
    if database_url:
        _drop_postgres(database_url)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """A headless Chromium for a module's browser tests, which open a new context in it for
    each test. Not one per session: Playwright's sync API keeps an event loop running in the
    test process while it is started, and Django refuses database calls from a thread with a
    running loop, so every later test of that process that touches the database would fail."""
    if not Path(CHROMIUM).exists():
        service_absent(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        service_absent("playwright is not installed (pip install -e '.[test]')")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield launched
        launched.close()


def finished(client: httpx.Client, run: str, timeout: float = 30) -> dict[str, Any]:
    """The run's status once it reaches a terminal state; ``run`` is a run id, or the status
    URL an API answer gave (a path, which follows the prefix gristmill is mounted under)."""
    url = run if run.startswith("/") else f"/api/v1/runs/{run}"

    def terminal() -> dict[str, Any] | None:
        status: dict[str, Any] = client.get(url).json()
        return status if RunState(status["state"]).is_terminal else None

    return wait_until(terminal, timeout, message=f"run {run} to end")  # type: ignore[no-any-return]
