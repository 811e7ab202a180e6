"""Several services in one process, each on its own database: a service made from settings
uses the database those settings name, never silently the first one's."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.errors import ConfigurationError, NotFoundError
from gristmill.settings import Settings
from tests.conftest import service_absent
from tests.integration.conftest import PIPELINES


def _runs_in(database: Path) -> set[uuid.UUID]:
    with sqlite3.connect(database) as connection:
        return {uuid.UUID(row[0]) for row in connection.execute("SELECT id FROM gristmill_run")}


def test_a_service_on_another_sqlite_database_keeps_its_runs_there(
    databases: dict[str, Any], tmp_path: Path
) -> None:
    # Given the process's first service, and a second one made from settings naming another
    # (new) SQLite database
    first = Service.from_settings(databases["settings"])
    settings = Settings.from_env({}, data_dir=tmp_path / "other", pipelines=(PIPELINES,))
    second = Service.from_settings(settings)
    assert first.store.alias == "default"
    assert second.store.alias != "default"
    assert second.settings == settings
    # When a run is submitted to the second
    run_id = submit("trivial", [], {}, service=second)
    # Then it is in the second database only
    assert get_run(run_id, service=second).run.pipeline == "trivial"
    with pytest.raises(NotFoundError):
        get_run(run_id, service=first)
    assert _runs_in(tmp_path / "other" / "gristmill.sqlite3") == {uuid.UUID(run_id)}
    # and a third service on the same database shares the second one's alias
    assert Service.from_settings(settings).store.alias == second.store.alias


@pytest.mark.postgres
def test_a_service_on_a_configured_database_uses_its_alias(databases: dict[str, Any]) -> None:
    if not databases["pg_url"]:
        service_absent(databases["pg_reason"])
    settings = replace(databases["settings"], database_url=databases["pg_url"])
    assert Service.from_settings(settings).store.alias == "postgres"


@pytest.mark.postgres
def test_a_service_on_a_new_postgres_database_beside_sqlite(
    databases: dict[str, Any], fresh_postgres: str, tmp_path: Path
) -> None:
    settings = Settings.from_env(
        {}, data_dir=tmp_path, database_url=fresh_postgres, pipelines=(PIPELINES,)
    )
    where = fresh_postgres.split("@", 1)[-1]
    # A PostgreSQL database is not migrated implicitly: the error names it
    with pytest.raises(ConfigurationError) as refused:
        Service.from_settings(settings)
    assert str(refused.value) == (
        f"the database postgres://{where} has no gristmill tables yet: "
        "run `gristmill migrate` first"
    )
    service = Service.from_settings(settings, migrate=True)
    assert service.store.alias not in ("default", "postgres")
    run_id = submit("trivial", [], {}, service=service)
    assert get_run(run_id, service=service).run.pipeline == "trivial"
    with pytest.raises(NotFoundError):
        get_run(run_id, service=Service.from_settings(databases["settings"]))
    service.store.close()
    from django.db import connections

    connections[service.store.alias].close()  # so that the database can be dropped


# A process of its own, where nothing has configured Django yet: the first service does.
TWO_SERVICES = """
import sys
from pathlib import Path
from gristmill.app.service import Service
from gristmill.settings import Settings
from gristmill.app.submission import submit

pipelines, *data_dirs = sys.argv[1:]
for data_dir in data_dirs:
    settings = Settings.from_env({}, data_dir=Path(data_dir), pipelines=(pipelines,))
    print(submit("trivial", [], {}, service=Service.from_settings(settings)))
"""


def test_two_services_made_first_in_a_process_each_use_their_database(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-c", TWO_SERVICES, PIPELINES, str(tmp_path / "a"), str(tmp_path / "b")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    in_a, in_b = (uuid.UUID(line) for line in done.stdout.split())
    assert _runs_in(tmp_path / "a" / "gristmill.sqlite3") == {in_a}
    assert _runs_in(tmp_path / "b" / "gristmill.sqlite3") == {in_b}
