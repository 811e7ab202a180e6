"""Map and reduce steps on the memory store, run inline: batches, findings, counts, the
failure policies, retrying failed batches, staleness and cancellation."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from gristmill import (
    DefinitionError,
    Inputs,
    MapTask,
    Pipeline,
    Reservoir,
    RunContext,
    items,
    map_step,
    task,
)
from gristmill.app.maps import retry_failed_batches
from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run, submit
from gristmill.authoring.inputs import LocalFile
from gristmill.executors.inline import run_inline
from gristmill.executors.worker import Worker
from gristmill.states import BatchState, RunState, StepState
from gristmill.store.memory import MemoryStore
from tests.unit.engine.conftest import MakeService


def lines_file(path: Path, count: int) -> Path:
    path.write_text("".join(json.dumps({"n": n}) + "\n" for n in range(1, count + 1)))
    return path


def expected_findings(count: int) -> list[int]:
    """The item numbers of the findings ``checking_pipeline`` makes for ``count`` items."""
    sevens = [n for n in range(1, count + 1) if n % 7 == 0]
    return sorted(sevens + [n for n in range(1, count + 1) if n % 5 == 0 and n % 7] * 2)


def checking_pipeline(
    *, batch_size: int = 10, on_failure: str = "fail", bad: set[int] | None = None
) -> Pipeline:
    broken = bad or set()

    @map_step(items=items.json_lines(), batch_size=batch_size, on_failure=on_failure)
    def check(item: Any, run: RunContext) -> Any:
        if item["n"] in broken:
            raise ValueError(f"cannot check {item['n']}")
        if item["n"] % 7 == 0:
            return {"kind": "seven", "n": item["n"]}
        if item["n"] % 5 == 0:
            return [{"kind": "five", "n": item["n"]}, {"kind": "odd-five", "n": item["n"]}]
        return None

    @task
    def report(run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        sampler = Reservoir(k=2, seed=1)
        seen = []
        for number, finding in run.findings("check"):
            seen.append(number)
            sampler.add(finding["kind"], finding["n"])
        summary = run.map_summary("check")
        return {"seen": seen, "counts": summary["counts"], "examples": sampler.as_dict()}

    return Pipeline("maps", [check, report], inputs=Inputs(min_count=1))


def run_file(service: Service, path: Path) -> RunStatus:
    run_id = submit("maps", [LocalFile(path)], service=service)
    run_inline(service, run_id)
    return get_run(run_id, service=service)


def test_a_map_step_checks_every_item_once_and_the_reduce_reads_the_findings(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline())
    status = run_file(service, lines_file(tmp_path / "data.jsonl", 95))
    assert status.state == RunState.SUCCEEDED, status
    steps = {s.name: s for s in status.steps}
    summary = steps["check"].result
    assert summary["items"] == 95 and summary["items_done"] == 95
    assert summary["batches"] == 10
    fives = len([n for n in range(1, 96) if n % 5 == 0 and n % 7])
    assert summary["counts"] == {"five": fives, "odd-five": fives, "seven": 13}
    report = steps["report"].result
    assert report["seen"] == expected_findings(95)
    log = [line.text for line in service.store.read_log(status.id)]
    assert log == ["95 items in 10 batches of up to 10", "all batches of `check` ended; continuing"]
    assert all(len(v) == 2 for v in report["examples"].values())


def test_under_continue_a_raising_item_is_listed_and_the_batch_goes_on(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline(on_failure="continue", bad={13}))
    status = run_file(service, lines_file(tmp_path / "data.jsonl", 30))
    assert status.state == RunState.SUCCEEDED
    summary = {s.name: s for s in status.steps}["check"].result
    assert summary["items_done"] == 30 and summary["items_failed"] == 1
    assert summary["failed_batches"] == [
        {
            "batch": 2,
            "first_item": 11,
            "items": 10,
            "state": "done",
            "error": None,
            "failed_items": [{"item": 13, "error": "ValueError: cannot check 13"}],
        }
    ]


def test_under_fail_a_raising_item_fails_the_run_naming_step_batch_item_and_error(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline(bad={13}))
    status = run_file(service, lines_file(tmp_path / "data.jsonl", 30))
    assert status.state == RunState.FAILED
    assert status.error == ("step `check` failed in batch 2: item 13: ValueError: cannot check 13")
    [check] = service.store.map_status(status.id)
    # Batch 3 was not run: the run fails anyway.
    assert check.batches == {"pending": 0, "done": 1, "failed": 1, "skipped": 1}
    assert [s.name for s in status.steps if s.state == StepState.FAILED] == ["check"]


def test_retrying_failed_batches_redoes_only_them_and_recomputes_the_reduce(
    make_service: MakeService, tmp_path: Path
) -> None:
    broken = {13}
    service = make_service(checking_pipeline(bad=broken))
    status = run_file(service, lines_file(tmp_path / "data.jsonl", 30))
    assert status.state == RunState.FAILED
    before = {f.item for f in service.store.read_findings(status.id, "check")}
    broken.clear()  # the cause is fixed (say, a reference file); the code is the same
    assert retry_failed_batches(status.id, service=service) == 2  # the failed and the skipped
    assert service.store.get_run(status.id).state == RunState.RUNNING
    run_inline(service, status.id)
    again = get_run(status.id, service=service)
    assert again.state == RunState.SUCCEEDED, again
    steps = {s.name: s for s in again.steps}
    assert steps["check"].result["items_done"] == 30
    assert steps["check"].result["generation"] == 2
    findings = [f.item for f in service.store.read_findings(status.id, "check")]
    assert set(findings) > before
    assert findings == expected_findings(30)
    assert steps["report"].result["seen"] == findings


def test_retry_refuses_a_run_with_no_failed_batches(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline())
    status = run_file(service, lines_file(tmp_path / "data.jsonl", 5))
    assert status.state == RunState.SUCCEEDED
    assert service.store.retry_failed_batches(status.id) == 0
    assert service.store.get_run(status.id).state == RunState.SUCCEEDED


def test_a_changed_item_check_redoes_the_map_and_the_reduce(
    make_service: MakeService, tmp_path: Path
) -> None:
    v1 = make_service(checking_pipeline())
    status = run_file(v1, lines_file(tmp_path / "data.jsonl", 20))
    assert {s.name: s for s in status.steps}["check"].result["counts"]["seven"] == 2

    @map_step(items=items.json_lines(), batch_size=10)
    def check(item: Any, run: RunContext) -> Any:
        return {"kind": "all", "n": item["n"]}

    changed = Pipeline("maps", [check, checking_pipeline().steps[1]], inputs=Inputs())
    v2 = Service(v1.settings, v1.store, make_service(changed).registry, v1.storage)
    assert v1.store.requeue(status.id, reason="stale results")
    assert run_inline(v2, status.id) == RunState.SUCCEEDED
    again = {s.name: s for s in get_run(status.id, service=v2).steps}
    assert again["check"].result["counts"] == {"all": 20}
    assert again["report"].result["seen"] == list(range(1, 21))
    log = [line.text for line in v2.store.read_log(status.id)]
    assert any(line.startswith("recomputing: the step now runs") for line in log)
    assert len(v2.store.read_findings(status.id, "check")) == 20


def test_readers_json_array_csv_and_generators_spill_batches(
    make_service: MakeService, tmp_path: Path
) -> None:
    def numbers(run: RunContext) -> Any:
        yield from ({"n": n} for n in range(1, 26))

    found: dict[str, Any] = {}

    def pipeline(name: str, reader: Any) -> Pipeline:
        @map_step(items=reader, batch_size=10, name="check")
        def check(item: Any, run: RunContext) -> Any:
            return {"kind": "item", "n": int(item["n"])}

        @task
        def reduce(run: RunContext) -> Any:
            found[name] = [f["n"] for _, f in run.findings("check")]
            return run.map_summary("check")["counts"]

        return Pipeline(name, [check, reduce], inputs=Inputs(min_count=0))

    service = make_service(
        pipeline("array", items.json_array(prefix="records.item")),
        pipeline("csv", items.csv_rows()),
        pipeline("generated", numbers),
    )
    (tmp_path / "data.json").write_text(json.dumps({"records": [{"n": n} for n in range(1, 26)]}))
    (tmp_path / "data.csv").write_text("n,x\n" + "".join(f"{n},a\n" for n in range(1, 26)))
    for name, inputs in [
        ("array", [LocalFile(tmp_path / "data.json")]),
        ("csv", [LocalFile(tmp_path / "data.csv")]),
        ("generated", []),
    ]:
        run_id = submit(name, inputs, service=service)
        assert run_inline(service, run_id) == RunState.SUCCEEDED, get_run(run_id, service=service)
        assert found[name] == list(range(1, 26))
        [status] = service.store.map_status(run_id)
        assert status.batches_total == 3 and status.items_done == 25


def test_an_empty_input_makes_an_empty_map(make_service: MakeService, tmp_path: Path) -> None:
    service = make_service(checking_pipeline())
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    status = run_file(service, empty)
    assert status.state == RunState.SUCCEEDED
    assert {s.name: s for s in status.steps}["check"].result["items"] == 0


def test_a_reservoir_keeps_k_examples_per_key_the_same_for_a_seed() -> None:
    def sample(seed: int) -> dict[Any, list[Any]]:
        reservoir = Reservoir(k=5, seed=seed)
        for n in range(1000):
            reservoir.add("even" if n % 2 == 0 else "odd", n)
        return reservoir.as_dict()

    first = sample(3)
    assert first == sample(3)
    assert first != sample(4)
    assert {k: len(v) for k, v in first.items()} == {"even": 5, "odd": 5}
    assert all(n % 2 == 0 for n in first["even"])


@pytest.mark.parametrize("size", [1, 3, 10, 11])
def test_json_lines_are_cut_at_line_ends_without_a_final_newline_too(
    tmp_path: Path, size: int
) -> None:
    from gristmill.engine.mapping import _line_ranges, read_batch
    from gristmill.storage import FilesystemStorage

    storage = FilesystemStorage(tmp_path)
    (tmp_path / "d.jsonl").write_bytes(b"".join(b'{"n":%d}\n' % n for n in range(1, 11))[:-1])
    total, batches = _line_ranges(tmp_path / "d.jsonl", "d.jsonl", size)
    assert total == 10
    lines = [json.loads(line)["n"] for b in batches for line in read_batch(storage, b)[0]]
    assert lines == list(range(1, 11))
    assert [b.first_item for b in batches] == list(range(1, 11, size))


def started_map(service: Service, path: Path) -> tuple[str, Worker]:
    """A run whose map step was cut into batches by a worker, none of them claimed yet."""
    run_id = submit("maps", [LocalFile(path)], service=service)
    worker = Worker(service, name="w1", exit_on_hard_stop=False)
    [claim] = service.store.claim("w1", queues=None, lease=30, run_id=run_id)
    assert worker.runner.run(claim) == RunState.RUNNING
    return run_id, worker


def units(service: Service, run_id: str) -> dict[str, int]:
    store = service.store
    assert isinstance(store, MemoryStore)
    states: dict[str, int] = {}
    for unit in store._runs[run_id].units:
        states[unit.state] = states.get(unit.state, 0) + 1
    return states


def test_the_run_stays_running_while_its_batches_wait_with_items_as_progress(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline())
    run_id, worker = started_map(service, lines_file(tmp_path / "data.jsonl", 35))
    run = service.store.get_run(run_id)
    assert run.state == RunState.RUNNING
    assert (run.current_step, run.progress_done, run.progress_total) == ("check", 0, 35)
    [claim] = service.store.claim("w1", queues=None, lease=30)
    assert claim.kind == "batch"
    assert worker.runner.run(claim) == RunState.RUNNING
    run = service.store.get_run(run_id)
    assert (run.stage, run.progress_done, run.progress_total) == ("batch 1 of 4", 10, 35)
    worker.watchdog.stop()


def test_a_cancel_while_batches_wait_ends_the_run_cancelled_and_every_unit(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline())
    run_id, worker = started_map(service, lines_file(tmp_path / "data.jsonl", 35))
    [claim] = service.store.claim("w1", queues=None, lease=30)
    assert service.store.request_cancel(run_id)
    assert worker.runner.run(claim) == RunState.CANCELLED
    assert service.store.get_run(run_id).state == RunState.CANCELLED
    assert units(service, run_id) == {"done": 5}
    assert service.store.claim("w1", queues=None, lease=30) == []
    # Retrying the batches of a cancelled run redoes the ones never run.
    assert service.store.retry_failed_batches(run_id) == 4
    run_inline(service, run_id)
    assert get_run(run_id, service=service).state == RunState.SUCCEEDED
    assert [f.item for f in service.store.read_findings(run_id, "check")] == expected_findings(35)
    worker.watchdog.stop()


def test_a_batch_whose_worker_died_is_redone_and_counted_once(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline())
    run_id, worker = started_map(service, lines_file(tmp_path / "data.jsonl", 35))
    [lost] = service.store.claim("w1", queues=None, lease=30)
    assert service.store.release_worker("w1", "killed by signal SIGKILL") == 1
    assert service.store.get_run(run_id).state == RunState.RUNNING
    [again] = service.store.claim("w2", queues=None, lease=30)
    assert (again.unit_id, again.attempt) == (lost.unit_id, 2)
    assert worker.runner.run(again) == RunState.RUNNING
    # The first delivery comes back late: fenced out, it writes nothing.
    assert worker.runner.run(lost) is None
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    assert {s.name: s for s in status.steps}["check"].result["items_done"] == 35
    assert [f.item for f in service.store.read_findings(run_id, "check")] == expected_findings(35)
    worker.watchdog.stop()


def test_a_batch_that_keeps_losing_its_workers_fails_and_the_policy_applies(
    make_service: MakeService, tmp_path: Path
) -> None:
    service = make_service(checking_pipeline(on_failure="continue"))
    run_id, worker = started_map(service, lines_file(tmp_path / "data.jsonl", 35))
    for attempt in (1, 2, 3):
        [claim] = service.store.claim("w1", queues=None, lease=30, limit=1)
        assert claim.attempt == attempt
        service.store.release_worker("w1", "killed by signal SIGKILL")
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    [failed] = {s.name: s for s in status.steps}["check"].result["failed_batches"]
    assert failed["batch"] == 1 and failed["state"] == BatchState.FAILED
    assert failed["error"] == (
        "worker lost (killed by signal SIGKILL) on attempt 3; gave up after 3 lost attempts"
    )
    worker.watchdog.stop()


@pytest.mark.parametrize("size", [1, 2, 7, 1000])
def test_json_lines_of_uneven_lengths_across_chunks_are_cut_exactly(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    from gristmill.engine import mapping
    from gristmill.storage import FilesystemStorage

    monkeypatch.setattr(mapping, "CHUNK", 97)  # lines straddle chunk ends
    storage = FilesystemStorage(tmp_path)
    rows = [json.dumps({"n": n, "pad": "x" * (n * 37 % 90)}) for n in range(1, 1201)]
    (tmp_path / "d.jsonl").write_text("\n".join(rows) + "\n")
    total, batches = mapping._line_ranges(tmp_path / "d.jsonl", "d.jsonl", size)
    assert total == 1200
    read = [json.loads(line)["n"] for b in batches for line in mapping.read_batch(storage, b)[0]]
    assert read == list(range(1, 1201))
    assert all(b.items == size for b in batches[:-1])
    assert [b.first_item for b in batches] == list(range(1, 1201, size))


def test_a_batch_units_heartbeat_leaves_the_runs_item_progress_alone(
    make_service: MakeService, tmp_path: Path
) -> None:
    from gristmill.engine.watchdog import UnitReporter

    service = make_service(checking_pipeline())
    run_id, worker = started_map(service, lines_file(tmp_path / "data.jsonl", 35))
    [claim] = service.store.claim("w1", queues=None, lease=30)
    assert worker.runner.run(claim) == RunState.RUNNING
    [claim] = service.store.claim("w1", queues=None, lease=30)
    reporter = UnitReporter()
    reporter.status = False
    reporter.begin_step("check")
    reporter.log("a line from an item", "log")
    assert service.store.flush(claim, reporter.take(), lease=30).owned
    run = service.store.get_run(run_id)
    assert (run.current_step, run.progress_done, run.progress_total) == ("check", 10, 35)
    assert "a line from an item" in [line.text for line in service.store.read_log(run_id)]
    worker.watchdog.stop()


def test_a_map_step_without_network_is_refused_at_definition_naming_the_step() -> None:
    class Offline(MapTask):
        items = items.json_lines("data")
        network = False

        def check(self, item: Any, run: RunContext) -> None:
            return None

    with pytest.raises(DefinitionError, match="network=False is not available on map steps"):
        Offline().check_definition()
