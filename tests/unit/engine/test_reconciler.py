"""The reconciler on a MemoryStore: it rings again for units queued too long, re-queues expired
leases, and does nothing while another process holds its lock."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from gristmill import Inputs, Pipeline, RunContext, task
from gristmill.app.service import make_bell
from gristmill.app.submission import submit
from gristmill.engine.reconciler import LOCK, Reconciler
from gristmill.errors import ConfigurationError
from gristmill.settings import Settings
from gristmill.states import RunState
from gristmill.store.base import Store
from gristmill.store.records import QueuedUnit
from tests.unit.engine.conftest import MakeService


@task
def noop(run: RunContext) -> int:
    return 1


PIPELINE = Pipeline("noop", [noop], inputs=Inputs(min_count=0))


class Heard:
    def __init__(self) -> None:
        self.units: list[QueuedUnit] = []

    def __call__(self, units: Sequence[QueuedUnit]) -> None:
        self.units.extend(units)


def test_units_queued_longer_than_the_threshold_are_rung_for_again(
    make_service: MakeService,
) -> None:
    service = make_service(PIPELINE)
    heard = service.store.bell = Heard()
    run_ids = [submit("noop", service=service) for _ in range(3)]
    assert len(heard.units) == 3  # rung once each at submission
    reconciler = Reconciler(service.store, stale_after=3600)
    assert reconciler.run_once().rung == 0  # first seen now
    assert reconciler.run_once().rung == 0  # not queued long enough
    assert len(heard.units) == 3
    reconciler.stale_after = 0
    passed = reconciler.run_once()
    assert (passed.ran, passed.rung) == (True, 3)
    assert heard.units[3:] == heard.units[:3]
    assert [service.store.get_run(r).state for r in run_ids] == [RunState.QUEUED] * 3


def test_a_unit_claimed_meanwhile_is_not_rung_for(make_service: MakeService) -> None:
    service = make_service(PIPELINE)
    heard = service.store.bell = Heard()
    submit("noop", service=service)
    submit("noop", service=service)
    reconciler = Reconciler(service.store, stale_after=0)
    (claim,) = service.store.claim("w", queues=None, lease=30)
    assert reconciler.run_once().rung == 1
    assert heard.units[-1].unit_id != claim.unit_id


def test_expired_leases_are_requeued_and_rung_for(make_service: MakeService) -> None:
    service = make_service(PIPELINE)
    heard = service.store.bell = Heard()
    run_id = submit("noop", service=service)
    (claim,) = service.store.claim("w", queues=None, lease=-1)
    passed = Reconciler(service.store, stale_after=3600).run_once()
    assert passed.reaped == 1
    assert service.store.get_run(run_id).state == RunState.QUEUED
    assert heard.units[-1].unit_id == claim.unit_id


def hold_elsewhere(store: Store, lease: float) -> None:
    """Take the reconciler's lock in another thread (another holder) and never give it back,
    as a holder frozen mid-pass would."""
    taken: list[bool] = []
    thread = threading.Thread(target=lambda: taken.append(store.try_lock(LOCK, lease=lease)))
    thread.start()
    thread.join()
    assert taken == [True]


def test_nothing_is_done_while_another_process_holds_the_lock(make_service: MakeService) -> None:
    service = make_service(PIPELINE)
    heard = service.store.bell = Heard()
    submit("noop", service=service)
    hold_elsewhere(service.store, lease=3600)
    assert Reconciler(service.store, stale_after=0).run_once().ran is False
    assert len(heard.units) == 1


def test_a_holder_whose_lease_ran_out_is_taken_over(make_service: MakeService) -> None:
    service = make_service(PIPELINE)
    heard = service.store.bell = Heard()
    submit("noop", service=service)
    hold_elsewhere(service.store, lease=-1)  # its lease ran out a second ago
    assert Reconciler(service.store, stale_after=0).run_once().ran is True
    assert len(heard.units) == 2


def test_a_pass_runs_every_half_threshold(make_service: MakeService) -> None:
    assert Reconciler(make_service(PIPELINE).store, stale_after=10).interval == 5


def test_the_local_executor_has_no_bell_and_a_plain_install_never_imports_celery(
    tmp_path: Path,
) -> None:
    settings = Settings.from_env({}, data_dir=tmp_path)
    assert settings.executor == "local"
    assert make_bell(settings) is None
    code = (
        "import sys\n"
        "from gristmill.cli.main import main\n"
        "from gristmill.executors import local, worker\n"
        "from gristmill.app.service import Service, make_bell\n"
        "from gristmill.settings import Settings\n"
        "assert make_bell(Settings.from_env({})) is None\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert done.stdout.strip() == "[]", done.stderr


def test_the_celery_executor_without_its_extra_names_the_extra(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "celery", None)  # as if not installed
    monkeypatch.delitem(sys.modules, "gristmill.executors.celery", raising=False)
    settings = Settings.from_env(
        {"GRISTMILL_EXECUTOR": "celery", "GRISTMILL_BROKER_URL": "redis://localhost:6379/0"},
        data_dir=tmp_path,
    )
    with pytest.raises(ConfigurationError) as raised:
        make_bell(settings)
    assert str(raised.value) == (
        "GRISTMILL_EXECUTOR=celery needs the celery extra: pip install 'gristmill[celery]'"
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"GRISTMILL_EXECUTOR": "dramatiq"}, "GRISTMILL_EXECUTOR must be 'local' or 'celery'"),
        ({"GRISTMILL_EXECUTOR": "celery"}, "GRISTMILL_EXECUTOR=celery needs GRISTMILL_BROKER_URL"),
        (
            {"GRISTMILL_EXECUTOR": "celery", "GRISTMILL_BROKER_URL": "kafka://x"},
            "GRISTMILL_BROKER_URL must start with redis://, rediss:// or amqp://",
        ),
        ({"GRISTMILL_RECONCILE_AFTER": "0"}, "GRISTMILL_RECONCILE_AFTER must be positive"),
    ],
)
def test_executor_settings_that_cannot_work_are_refused(
    env: dict[str, str], message: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigurationError) as raised:
        Settings.from_env(env, data_dir=tmp_path)
    assert str(raised.value).startswith(message)
