"""A reconciler whose lock holder froze mid-pass (``SIGSTOP``, as a paused machine would) is
taken over once the holder's lease runs out: the real lock, held by a real stopped process, on
SQLite and PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gristmill.engine.reconciler import LOCK, Reconciler
from gristmill.server.store import DjangoStore
from tests.conftest import service_absent
from tests.integration.conftest import wait_until

HOLDER = """
import os, signal, sys
from pathlib import Path
from gristmill.engine.reconciler import LOCK
from gristmill.server.conf import sql_store
from gristmill.settings import Settings

settings = Settings.from_env({}, data_dir=Path(sys.argv[1]), database_url=sys.argv[2])
_, store = sql_store(settings, migrate=False)
assert store.try_lock(LOCK, lease=float(sys.argv[3]))
print("locked", flush=True)
os.kill(os.getpid(), signal.SIGSTOP)  # frozen mid-pass, holding the lock
print("resumed", flush=True)
"""


def frozen_holder(tmp_path: Path, url: str, lease: float) -> subprocess.Popen[str]:
    """A process that takes the reconciler's lock for ``lease`` seconds, then stops itself."""
    process = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(tmp_path), url, str(lease)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert process.stdout.readline().strip() == "locked"
        _, status = os.waitpid(process.pid, os.WUNTRACED)  # returns once it is stopped
        assert os.WIFSTOPPED(status)
    except BaseException:
        kill(process)
        raise
    return process


def kill(process: subprocess.Popen[str]) -> None:
    if process.returncode is None:
        process.kill()  # SIGKILL ends a stopped process too
    process.wait(timeout=30)
    if process.stdout is not None:
        process.stdout.close()


@pytest.mark.parametrize(
    "backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def test_a_frozen_holder_of_the_reconcilers_lock_is_taken_over_when_its_lease_runs_out(
    databases: dict[str, Any], tmp_path: Path, backend: str
) -> None:
    if backend == "postgres" and not databases["pg_url"]:
        service_absent(databases["pg_reason"])
    alias = "postgres" if backend == "postgres" else "default"
    url = databases["pg_url"] if backend == "postgres" else databases["sqlite_url"]
    store = DjangoStore(alias)
    reconciler = Reconciler(store, stale_after=3600)
    try:
        frozen = frozen_holder(tmp_path, url, lease=3600)
        try:
            assert reconciler.run_once().ran is False  # its lease is live: it is not taken
        finally:
            kill(frozen)
            forget_lease(alias)
        frozen = frozen_holder(tmp_path, url, lease=0.5)
        try:
            wait_until(lambda: reconciler.run_once().ran, message="the lock to be taken over")
        finally:
            kill(frozen)
    finally:
        forget_lease(alias)
        store.close()


def forget_lease(alias: str) -> None:
    """Drop what a killed holder left of the lock, so that no later test waits for it."""
    from gristmill.server.models import LockLease

    LockLease.objects.using(alias).filter(name=LOCK).delete()
