"""Map steps on real worker processes of each executor (local, and Celery on Redis and on
RabbitMQ), on SQLite and PostgreSQL: every item counted once, every finding stored once, whatever
happens to the workers; failure policies, retrying failed batches, and cancelling mid-map.

(The Celery executor's broker faults on a map run are in test_celery_maps.py.)"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from gristmill import RunState
from gristmill.app.maps import retry_failed_batches
from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit, wait
from gristmill.authoring.inputs import LocalFile
from tests.integration.conftest import Workers, wait_until

ITEMS = 20_000


def dataset(path: Path, count: int = ITEMS) -> Path:
    with path.open("w") as out:
        for n in range(1, count + 1):
            out.write(json.dumps({"n": n, "name": f"record {n}"}) + "\n")
    return path


def expected(count: int = ITEMS) -> list[int]:
    """The item numbers of every finding of ``_check_item`` (two for each multiple of 50)."""
    found = []
    for n in range(1, count + 1):
        if n % 7 == 0:
            found.append(n)
        elif n % 50 == 0:
            found += [n, n]
    return found


def findings(service: Service, run_id: str) -> list[int]:
    items: list[int] = []
    after = 0
    while page := service.store.read_findings(run_id, "check", after=after, limit=1000):
        items += [f.item for f in page]
        after = page[-1].item
    return items


def open_units(service: Service, run_id: str) -> int:
    from gristmill.server.models import WorkUnit

    alias = service.store.alias  # type: ignore[attr-defined]
    return WorkUnit.objects.using(alias).filter(run_id=run_id).exclude(state="done").count()


def check_counted_once(service: Service, run_id: str, result: dict[str, Any]) -> None:
    assert findings(service, run_id) == expected()
    assert result["items_done"] == ITEMS
    assert result["findings"] == len(expected())
    sevens = ITEMS // 7
    fifties = len([n for n in range(50, ITEMS + 1, 50) if n % 7])
    counts = {"fifty": fifties, "round": fifties, "seven": sevens}
    assert result["counted"] == result["summary"] == counts
    assert {kind: len(found) for kind, found in result["examples"].items()} == {
        "fifty": 5,
        "round": 5,
        "seven": 5,
    }
    [status] = service.store.map_status(run_id)
    assert (status.batches_total, status.batches["done"], status.items_done) == (40, 40, ITEMS)
    assert open_units(service, run_id) == 0


def test_twenty_thousand_items_in_batches_of_500_across_two_workers_are_counted_once(
    service: Service, any_workers: Workers, tmp_path: Path
) -> None:
    any_workers.start(2)
    run_id = submit("mapping", [LocalFile(dataset(tmp_path / "data.jsonl"))], service=service)
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    check_counted_once(service, run_id, status.result("tally"))
    assert status.result("check")["items"] == ITEMS


def test_a_worker_killed_mid_batch_has_its_batch_redone_with_nothing_duplicated(
    service: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    any_workers.start(2)
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    params = {"control": str(control), "hold": 1234}
    run_id = submit("mapping", [data], params, service=service)
    held = control / "held"
    wait_until(lambda: held.exists() and held.read_text(), timeout=60, message="a held batch")
    os.kill(int(held.read_text()), signal.SIGKILL)
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    check_counted_once(service, run_id, status.result("tally"))
    log = [line.text for line in service.store.read_log(run_id)]
    # A local supervisor sees its process die; a Celery worker's unit is found by its lease.
    cause = "killed by signal SIGKILL" if any_workers.executor == "local" else "its lease expired"
    assert any(f"lost: worker lost ({cause})" in line for line in log)


def test_under_fail_a_raising_item_fails_the_run_and_a_retry_redoes_its_batch_alone(
    service: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    any_workers.start(2)
    (control / "broken").touch()
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    run_id = submit("mapping", [data], {"control": str(control), "bad": 7777}, service=service)
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.FAILED
    assert status.error == (
        "step `check` failed in batch 16: item 7777: ValueError: cannot check item 7777"
    )
    [check] = service.store.map_status(run_id)
    assert check.batches["failed"] == 1  # the batches not run after it are skipped
    (control / "broken").unlink()
    retried = retry_failed_batches(run_id, service=service)
    assert retried == 1 + check.batches["skipped"]
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    check_counted_once(service, run_id, status.result("tally"))
    assert status.result("check")["generation"] == 2


def test_under_continue_a_raising_item_is_listed_and_a_retry_redoes_its_batch_alone(
    service: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    any_workers.start(2)
    (control / "broken").touch()
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    params = {"control": str(control), "bad": 7777}
    run_id = submit("mapping-continue", [data], params, service=service)
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.SUCCEEDED, status.error
    assert status.result("check")["items_failed"] == 1
    [failed] = status.result("check")["failed_batches"]
    assert failed["failed_items"] == [{"item": 7777, "error": "ValueError: cannot check item 7777"}]
    assert status.result("tally")["findings"] == len(expected()) - 1  # 7777 is a seven
    (control / "broken").unlink()
    assert retry_failed_batches(run_id, service=service) == 1
    status = wait(run_id, timeout=120, service=service)
    assert status.state == RunState.SUCCEEDED
    check_counted_once(service, run_id, status.result("tally"))


def test_a_run_cancelled_mid_map_ends_cancelled_with_nothing_left_queued_or_claimed(
    service: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    any_workers.start(2)
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    run_id = submit("mapping", [data], {"control": str(control), "hold": 1234}, service=service)
    wait_until(lambda: (control / "held").exists(), timeout=60, message="a held batch")
    assert service.store.request_cancel(run_id)
    status = wait(run_id, timeout=60, service=service)
    assert status.state == RunState.CANCELLED
    wait_until(lambda: open_units(service, run_id) == 0, message="every unit to end")
    assert get_run(run_id, service=service).state == RunState.CANCELLED


def test_the_api_shows_the_items_done_of_the_items_in_total_while_the_batches_run(
    site: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    from django.test import Client

    from tests.integration.conftest import HOST

    any_workers.start(2)
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    params = {"control": str(control), "hold": 19_999}  # in the last batch
    run_id = submit("mapping", [data], params, service=site)
    wait_until(lambda: (control / "held").exists(), timeout=60, message="a held batch")
    client = Client(HTTP_HOST=HOST)

    def progress() -> Any:
        body = client.get(f"/api/v1/runs/{run_id}").json()
        done = (body["progress"] or {}).get("done", 0)
        return body if done >= ITEMS - 1000 else None

    body = wait_until(progress, timeout=60, message="the other batches' items")
    assert body["state"] == "running"
    assert body["current_step"] == "check"
    assert body["progress"]["total"] == ITEMS
    assert body["stage"].startswith("batch ") and body["stage"].endswith(" of 40")
    (control / "release").touch()
    assert wait(run_id, timeout=60, service=site).state == RunState.SUCCEEDED


def test_a_worker_stopped_past_its_lease_cannot_save_its_batch_when_it_resumes(
    service: Service, any_workers: Workers, tmp_path: Path, control: Path
) -> None:
    any_workers.start(2)
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    run_id = submit("mapping", [data], {"control": str(control), "hold": 1234}, service=service)
    held = control / "held"
    wait_until(lambda: held.exists() and held.read_text(), timeout=60, message="a held batch")
    stopped = int(held.read_text())
    os.kill(stopped, signal.SIGSTOP)
    try:
        # Its lease runs out; the other worker redoes the batch (the hold is past) and the rest.
        status = wait(run_id, timeout=120, service=service)
    finally:
        os.kill(stopped, signal.SIGCONT)
    assert status.state == RunState.SUCCEEDED, status.error
    (control / "release").touch()  # the late delivery finishes its batch and tries to save it
    wait_until(
        lambda: "was taken over; its work is discarded" in any_workers.log.read_text(),
        message="the late batch to be fenced out",
    )
    check_counted_once(service, run_id, get_run(run_id, service=service).result("tally"))
