"""First start under concurrency: processes that open a new database at the same moment all
succeed, because migrations take turns (a file lock beside a SQLite database, an advisory lock
on PostgreSQL) and each process sees what the one before it finished."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.integration.conftest import PIPELINES

PROCESSES = 6

# Each process imports everything first, then blocks on its standard input: the test closes
# every process's input at once, so that they all reach the new database together.
SUBMIT = """
import sys
import django, django.db.migrations.executor, gristmill.server.conf, gristmill.app.submission
sys.stdin.read()
from gristmill.app.submission import submit
print(submit("trivial", [], {}))
"""
MIGRATE = """
import sys
import django, django.db.migrations.executor, gristmill.server.conf, gristmill.cli.main
sys.stdin.read()
sys.argv = ["gristmill", "migrate"]
gristmill.cli.main.main()
"""


def _environment(**values: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    return {**env, **values}


def _start_together(
    scripts: list[str], env: dict[str, str], logs: Path
) -> list[tuple[int, str, str]]:
    """Start one process per script, release them all at once; (exit status, stdout, stderr)
    of each."""
    logs.mkdir()
    processes = []
    try:
        for number, script in enumerate(scripts):
            with (
                (logs / f"{number}.out").open("w") as out,
                (logs / f"{number}.err").open("w") as err,
            ):
                processes.append(
                    subprocess.Popen(
                        [sys.executable, "-c", script],
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=out,
                        stderr=err,
                    )
                )
        for process in processes:
            assert process.stdin is not None
            process.stdin.close()
        return [
            (
                process.wait(timeout=90),
                (logs / f"{number}.out").read_text(),
                (logs / f"{number}.err").read_text(),
            )
            for number, process in enumerate(processes)
        ]
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()


def test_processes_opening_a_new_sqlite_database_at_once_all_succeed(tmp_path: Path) -> None:
    # Given a data directory with no database yet
    data_dir = tmp_path / "data"
    env = _environment(GRISTMILL_DATA_DIR=str(data_dir), GRISTMILL_PIPELINES=PIPELINES)
    # When several processes submit runs, and others run `gristmill migrate`, all at once
    scripts = [SUBMIT if i % 2 == 0 else MIGRATE for i in range(PROCESSES)]
    results = _start_together(scripts, env, tmp_path / "logs")
    # Then every one succeeds, and every submitted run is in the database
    for status, _, err in results:
        assert status == 0, err
    submitted = {
        uuid.UUID(out.strip())
        for script, (_, out, _) in zip(scripts, results, strict=True)
        if script == SUBMIT
    }
    assert len(submitted) == PROCESSES // 2
    with sqlite3.connect(data_dir / "gristmill.sqlite3") as database:
        stored = {uuid.UUID(row[0]) for row in database.execute("SELECT id FROM gristmill_run")}
    assert stored == submitted
    # and the secret key made on first use is the same for all
    assert len((data_dir / "secret_key").read_text()) > 40


@pytest.mark.postgres
def test_two_migrate_commands_at_once_on_a_new_postgres_database_both_succeed(
    tmp_path: Path, fresh_postgres: str
) -> None:
    env = _environment(GRISTMILL_DATA_DIR=str(tmp_path), GRISTMILL_DATABASE_URL=fresh_postgres)
    results = _start_together([MIGRATE, MIGRATE], env, tmp_path / "logs")
    where = fresh_postgres.split("@", 1)[-1]
    for status, _, err in results:
        assert status == 0, err
        assert err == f"database ready: postgres://{where}\n"


@pytest.mark.postgres
def test_a_command_on_a_postgres_database_without_tables_says_to_migrate_first(
    tmp_path: Path, fresh_postgres: str
) -> None:
    env = _environment(GRISTMILL_DATA_DIR=str(tmp_path), GRISTMILL_DATABASE_URL=fresh_postgres)
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", "prune"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    where = fresh_postgres.split("@", 1)[-1]
    assert done.returncode == 2
    assert done.stderr == (
        f"error: the database postgres://{where} has no gristmill tables yet: "
        "run `gristmill migrate` first\n"
    )
