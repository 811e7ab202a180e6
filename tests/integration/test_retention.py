"""Retention on each database: an ended run past its retention period is expired by the pruner
(its files, results and log removed, a small record kept that says when and why), by
``gristmill prune`` and by the workers' supervisor on a timer; a removal cut short by a crash is
finished by the next prune."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import TextInput
from gristmill.engine import retention
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from gristmill.storage import FilesystemStorage
from tests.integration.conftest import Workers, wait_until
from tests.integration.test_web import page

if TYPE_CHECKING:
    from django.test import Client

WEEK_LATER = datetime.now(UTC) + timedelta(days=8)  # the demo pipelines keep runs 7 days
KEPT = "it was kept for its retention period of 7 days"


@pytest.fixture(autouse=True)
def nothing_else_due(service: Service) -> None:
    """The database is shared by the whole session: expire what earlier tests left behind, so
    that each test's prune sees its own runs only."""
    retention.prune(service.store, service.storage, now=datetime.now(UTC) + timedelta(days=3650))


def ended(service: Service) -> str:
    """A succeeded run with an input, outputs, results and a log."""
    run_id = submit("reports", [TextInput("a\nb")], {"title": "T"}, service=service)
    run_inline(service, run_id)
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    assert any(service.storage.run_dir(run_id).rglob("*"))
    return run_id


def prune(service: Service, now: datetime = WEEK_LATER) -> retention.Pruned:
    return retention.prune(service.store, service.storage, now=now)


def change_run(service: Service, run_id: str, **fields: object) -> None:
    """Set columns of a run directly, as an administrator would (test set-up)."""
    from gristmill.server.models import Run

    Run.objects.using(service.store.alias).filter(pk=run_id).update(**fields)  # type: ignore[attr-defined]


def assert_expired(service: Service, run_id: str, reason: str = KEPT) -> None:
    status = get_run(run_id, service=service)
    assert status.state == RunState.EXPIRED
    assert status.run.error_message == reason
    assert status.run.inputs == [] and status.outputs == []
    assert service.store.get_steps(run_id) == {}
    assert service.store.read_log(run_id) == []
    assert not service.storage.run_dir(run_id).exists()
    assert service.store.unwiped(limit=10) == []


def test_a_run_past_its_retention_is_expired_and_its_files_removed(service: Service) -> None:
    run_id = ended(service)
    assert prune(service) == retention.Pruned(expired=1, wiped=1)
    assert_expired(service, run_id)


def test_a_run_within_its_retention_is_kept(service: Service) -> None:
    run_id = ended(service)
    assert prune(service, now=datetime.now(UTC) + timedelta(days=6)) == retention.Pruned()
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    assert any(service.storage.run_dir(run_id).rglob("*"))


def test_queued_running_and_pinned_runs_are_never_expired(service: Service) -> None:
    queued = submit("trivial", service=service)
    running = submit("trivial", service=service)
    change_run(service, running, state=RunState.RUNNING.value)
    pinned = ended(service)
    change_run(service, pinned, pinned=True)
    assert prune(service) == retention.Pruned()
    states = {run_id: get_run(run_id, service=service).state for run_id in (queued, running)}
    assert states == {queued: RunState.QUEUED, running: RunState.RUNNING}
    assert get_run(pinned, service=service).state == RunState.SUCCEEDED


def test_failed_and_cancelled_runs_expire_too(service: Service) -> None:
    failed = submit("failing", service=service)
    run_inline(service, failed)
    cancelled = submit("trivial", service=service)
    service.store.request_cancel(cancelled)
    assert {get_run(r, service=service).state for r in (failed, cancelled)} == {
        RunState.FAILED,
        RunState.CANCELLED,
    }
    assert prune(service).expired == 2
    for run_id in (failed, cancelled):
        assert_expired(service, run_id)


def test_every_due_run_is_expired_across_batches(service: Service) -> None:
    run_ids = [ended(service) for _ in range(5)]
    pruned = retention.prune(service.store, service.storage, now=WEEK_LATER, batch=2)
    assert pruned == retention.Pruned(expired=5, wiped=5)
    for run_id in run_ids:
        assert_expired(service, run_id)


def test_a_removal_cut_short_by_a_crash_is_finished_by_the_next_prune(service: Service) -> None:
    run_id = ended(service)
    # The database part of the removal happened, then the process died before the files went.
    assert service.store.expire(run_id, reason=KEPT)
    assert service.store.unwiped(limit=10) == [run_id]
    assert service.storage.run_dir(run_id).exists()
    assert prune(service, now=datetime.now(UTC)) == retention.Pruned(wiped=1)
    assert_expired(service, run_id)
    assert prune(service) == retention.Pruned()


class UndeletableStorage(FilesystemStorage):
    """Storage whose run directories cannot be removed, like files on a read-only mount."""

    def delete_run(self, run_id: str) -> None:
        raise PermissionError(f"cannot remove {self.run_dir(run_id)}")


def test_files_that_cannot_be_removed_are_tried_again_and_other_runs_go_on(
    service: Service,
) -> None:
    first, second = ended(service), ended(service)
    stuck = UndeletableStorage(service.storage.root)
    pruned = retention.prune(service.store, stuck, now=WEEK_LATER)
    assert pruned == retention.Pruned(expired=2, failed=2)
    assert sorted(service.store.unwiped(limit=10)) == sorted([first, second])
    assert prune(service) == retention.Pruned(wiped=2)
    for run_id in (first, second):
        assert_expired(service, run_id)


def test_the_page_of_a_pruned_run_says_when_and_why(service: Service, web: Client) -> None:
    run_id = ended(service)
    prune(service)
    html = page(web.get(f"/runs/{run_id}/"))
    assert html.one("#run-error").text.endswith(
        "its files were removed. It was kept for its retention period of 7 days."
    )
    status = web.get(f"/api/v1/runs/{run_id}").json()
    assert (status["state"], status["error"]["message"]) == ("expired", KEPT)


def test_an_expired_run_lists_no_steps_as_pending(service: Service, web: Client) -> None:
    run_id = ended(service)
    prune(service)
    assert get_run(run_id, service=service).steps == []
    assert web.get(f"/api/v1/runs/{run_id}").json()["steps"] == []


def test_a_deleted_run_is_wiped_at_once(service: Service, web: Client) -> None:
    run_id = ended(service)
    assert web.delete(f"/api/v1/runs/{run_id}").status_code == 204
    assert_expired(service, run_id, reason="deleted by a user")
    assert prune(service) == retention.Pruned()


@pytest.fixture
def overdue(service: Service) -> Iterator[str]:
    """An ended run submitted 8 days ago and kept for 7."""
    run_id = ended(service)
    created = datetime.now(UTC) - timedelta(days=8)
    change_run(service, run_id, created_at=created, expires_at=created + timedelta(days=7))
    yield run_id


def test_gristmill_prune_expires_what_is_due(service: Service, overdue: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", "prune"],
        env={**os.environ, **service.settings.to_env()},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "1 run(s) expired; files of 1 removed"
    assert_expired(service, overdue)


def test_the_workers_prune_on_a_timer(service: Service, workers: Workers, overdue: str) -> None:
    workers.start(1, GRISTMILL_PRUNE_INTERVAL="0.2")

    def expired() -> bool:
        return get_run(overdue, service=service).state == RunState.EXPIRED

    def wiped() -> bool:  # the files go, then the run is marked wiped
        gone = not service.storage.run_dir(overdue).exists()
        return gone and service.store.unwiped(limit=10) == []

    wait_until(expired, 30, message="the supervisor to expire the overdue run")
    wait_until(wiped, 10, message="its files to be removed")
    assert_expired(service, overdue)
