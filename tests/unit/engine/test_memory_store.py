"""What the memory store adds to the store contract (tested in
tests/integration/test_store_contract.py): it is safe to share between threads."""

from __future__ import annotations

import threading
import uuid
from datetime import UTC, datetime

from gristmill.states import RunState
from gristmill.store.memory import MemoryStore
from gristmill.store.records import Claim, NewRun, Report


def test_threads_claiming_at_once_never_get_the_same_unit() -> None:
    store = MemoryStore()
    run_ids = set()
    for _ in range(200):
        run_id = str(uuid.uuid4())
        store.create_run(NewRun(run_id, "p", "default", {}, [], datetime.now(UTC)))
        run_ids.add(run_id)
    claimed: list[list[Claim]] = [[] for _ in range(8)]
    start = threading.Barrier(8)

    def worker(mine: list[Claim]) -> None:
        start.wait()
        while claims := store.claim(f"w{id(mine)}", queues=None, lease=30):
            mine.extend(claims)
            assert store.finish(claims[0], RunState.SUCCEEDED, Report())

    threads = [threading.Thread(target=worker, args=(mine,)) for mine in claimed]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    run_claims = [claim.run_id for mine in claimed for claim in mine]
    assert sorted(run_claims) == sorted(run_ids)
    assert {store.get_run(run_id).state for run_id in run_ids} == {RunState.SUCCEEDED}


def test_a_returned_run_is_a_copy_the_caller_may_change() -> None:
    store = MemoryStore()
    run_id = str(uuid.uuid4())
    store.create_run(NewRun(run_id, "p", "default", {"sample": 1}, [], datetime.now(UTC)))
    run = store.get_run(run_id)
    run.params["sample"] = 2
    run.state = RunState.FAILED
    assert store.get_run(run_id).params == {"sample": 1}
    assert store.get_run(run_id).state == RunState.QUEUED
