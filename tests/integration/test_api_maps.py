"""The REST API of map steps on real local workers, on SQLite and PostgreSQL: each map step's
summary in the run's status (partial while batches remain, then final), its findings paged and
as JSON Lines, retrying failed batches, and the errors of bad parameters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from gristmill.app.service import Service
from gristmill.app.submission import submit, wait
from gristmill.authoring.inputs import LocalFile
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.conftest import Workers, wait_until
from tests.integration.test_access import bearer, browser, error_of, make_user
from tests.integration.test_maps import ITEMS, dataset, expected

API = "/api/v1"
SEVENS = ITEMS // 7
ALL_DONE = {"pending": 0, "done": 40, "failed": 0, "skipped": 0}
FIFTIES = len([n for n in range(50, ITEMS + 1, 50) if n % 7])


def status_of(client: Any, run_id: str) -> dict[str, Any]:
    answer = client.get(f"{API}/runs/{run_id}")
    assert answer.status_code == 200, answer.content
    body: dict[str, Any] = answer.json()
    return body


def all_findings(client: Any, run_id: str, **query: Any) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    after = 0
    while True:
        answer = client.get(
            f"{API}/runs/{run_id}/findings", {"step": "check", "after": after, **query}
        )
        assert answer.status_code == 200, answer.content
        page = answer.json()
        found += page["findings"]
        if page["next"] is None:
            assert page["findings"] == []
            return found
        after = page["next"]


def jsonl(client: Any, run_id: str, **query: Any) -> tuple[Any, list[dict[str, Any]]]:
    answer = client.get(f"{API}/runs/{run_id}/findings.jsonl", {"step": "check", **query})
    assert answer.status_code == 200
    assert answer.streaming
    text = b"".join(answer.streaming_content).decode()
    return answer, [json.loads(line) for line in text.splitlines()]


def test_an_ended_map_shows_its_aggregate_findings_and_failed_batch_and_retries_it_alone(
    service: Service, workers: Workers, tmp_path: Path, control: Path, wire: Any
) -> None:
    workers.start(2)
    (control / "broken").touch()
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    params = {"control": str(control), "bad": 7777}
    run_id = submit("mapping-continue", [data], params, service=service)
    assert wait(run_id, timeout=120, service=service).state == RunState.SUCCEEDED

    [check] = status_of(wire, run_id)["maps"]
    examples = check.pop("examples")
    assert check == {
        "step": "check",
        "items_total": ITEMS,
        "items_done": ITEMS,
        "items_failed": 1,
        "batches": {"pending": 0, "done": 40, "failed": 0, "skipped": 0},
        "batches_total": 40,
        "counts": {"fifty": FIFTIES, "round": FIFTIES, "seven": SEVENS - 1},
        "failed_batches": [
            {
                "number": 16,
                "first_item": 7501,
                "items": 500,
                "state": "done",
                "error": None,
                "failed_items": [{"item": 7777, "error": "ValueError: cannot check item 7777"}],
                "failed_items_total": 1,
            }
        ],
        "failed_batches_total": 1,
        "partial": False,
        "generation": 1,
        "findings_url": f"{API}/runs/{run_id}/findings?step=check",
        "findings_jsonl_url": f"{API}/runs/{run_id}/findings.jsonl?step=check",
    }
    assert sorted(examples) == ["fifty", "round", "seven"]
    assert all(0 < len(found) <= 10 for found in examples.values())
    assert all(f["kind"] == kind for kind, found in examples.items() for f in found)

    without = [n for n in expected() if n != 7777]
    paged = all_findings(wire, run_id, limit=700)
    assert [f["item"] for f in paged] == without
    assert paged[0] == {
        "item": 7,
        "batch": 1,
        "kind": "seven",
        "finding": {"kind": "seven", "n": 7},
    }
    answer, lines = jsonl(wire, run_id)
    assert lines == paged
    assert answer["Content-Type"] == "application/x-ndjson"
    assert answer["Content-Disposition"].startswith(
        f'attachment; filename="{run_id}-check-findings.jsonl"'
    )
    rounds = all_findings(wire, run_id, kind="round")
    assert {f["kind"] for f in rounds} == {"round"} and len(rounds) == FIFTIES
    assert jsonl(wire, run_id, kind="round")[1] == rounds

    (control / "broken").unlink()
    answer = wire.post(f"{API}/runs/{run_id}/retry-batches")
    assert answer.status_code == 202
    assert answer.json() == {"batches": 1, "state": "running"}
    assert wait(run_id, timeout=120, service=service).state == RunState.SUCCEEDED
    [check] = status_of(wire, run_id)["maps"]
    assert (check["items_failed"], check["failed_batches"], check["generation"]) == (0, [], 2)
    assert check["counts"] == {"fifty": FIFTIES, "round": FIFTIES, "seven": SEVENS}
    assert [f["item"] for f in all_findings(wire, run_id)] == expected()
    assert error_of(wire.post(f"{API}/runs/{run_id}/retry-batches")) == (
        409,
        "the run has no failed batches to retry",
    )


def test_a_running_map_is_partial_with_the_counts_of_the_batches_done_so_far(
    service: Service, workers: Workers, tmp_path: Path, control: Path, wire: Any
) -> None:
    workers.start(2)
    data = LocalFile(dataset(tmp_path / "data.jsonl"))
    run_id = submit("mapping", [data], {"control": str(control), "hold": 1234}, service=service)

    def all_but_the_held_batch() -> dict[str, Any] | None:
        maps = status_of(wire, run_id)["maps"]
        return maps[0] if maps and maps[0]["batches"].get("done") == 39 else None

    check = wait_until(all_but_the_held_batch, timeout=120, message="39 batches done")
    held = range(1001, 1501)  # batch 3, held on item 1234
    so_far = [n for n in expected() if n not in held]
    assert check["partial"] is True
    assert check["batches"] == {"pending": 1, "done": 39, "failed": 0, "skipped": 0}
    assert (check["items_done"], check["items_total"]) == (ITEMS - 500, ITEMS)
    assert sum(check["counts"].values()) == len(so_far)
    assert [f["item"] for f in all_findings(wire, run_id)] == so_far
    assert error_of(wire.post(f"{API}/runs/{run_id}/retry-batches")) == (
        409,
        "the run is running; failed batches can be retried once it has ended",
    )

    (control / "release").touch()
    assert wait(run_id, timeout=120, service=service).state == RunState.SUCCEEDED
    [check] = status_of(wire, run_id)["maps"]
    assert (check["partial"], check["batches"], check["items_done"]) == (False, ALL_DONE, ITEMS)
    assert sum(check["counts"].values()) == len(expected())


def small_run(service: Service, tmp_path: Path, owner: Any = None) -> str:
    data = LocalFile(dataset(tmp_path / "small.jsonl", 1200))
    run_id = submit(
        "mapping", [data], service=service, owner_id=owner.pk if owner is not None else None
    )
    run_inline(service, run_id)
    return run_id


def test_bad_parameters_are_refused_field_by_field(
    service: Service, tmp_path: Path, wire: Any
) -> None:
    run_id = small_run(service, tmp_path)
    findings = f"{API}/runs/{run_id}/findings"
    for path in (findings, f"{findings}.jsonl"):
        answer = wire.get(path, {"step": "nope"})
        message = "the run has no map step 'nope' (its map steps: 'check')"
        assert answer.status_code == 404
        assert answer.json()["error"] == {
            "code": "not_found",
            "message": message,
            "details": {"query.step": [message]},
        }
        answer = wire.get(path)
        assert answer.status_code == 422
        assert list(answer.json()["error"]["details"]) == ["query.step"]
    for after in ("x", "-1", "1.5"):
        answer = wire.get(findings, {"step": "check", "after": after})
        assert answer.status_code == 422, after
        assert list(answer.json()["error"]["details"]) == ["query.after"]
    answer = wire.get(findings, {"step": "check", "limit": "0"})
    assert list(answer.json()["error"]["details"]) == ["query.limit"]
    page = wire.get(findings, {"step": "check", "after": 2**40}).json()
    assert page == {"findings": [], "next": None}
    assert error_of(wire.get(f"{API}/runs/nope/findings", {"step": "check"})) == (
        404,
        "no run with id 'nope'",
    )


def test_a_users_map_findings_and_retry_are_hidden_from_others(
    service: Service, tmp_path: Path, site: None
) -> None:
    owner = make_user()
    run_id = small_run(service, tmp_path, owner)
    paths = ["/findings?step=check", "/findings.jsonl?step=check"]
    hidden = (404, f"no run with id {run_id!r}")
    for stranger in (browser(), browser(make_user())):
        for path in paths:
            assert error_of(stranger.get(f"{API}/runs/{run_id}{path}")) == hidden
    retry = f"{API}/runs/{run_id}/retry-batches"
    assert error_of(browser().post(retry, headers=bearer(make_user()))) == hidden
    for user in (owner, make_user(staff=True)):
        for path in paths:
            assert browser(user).get(f"{API}/runs/{run_id}{path}").status_code == 200
        answer = browser().post(retry, headers=bearer(user))
        assert error_of(answer) == (409, "the run has no failed batches to retry")
    assert browser(owner).get(f"{API}/runs/{run_id}").json()["maps"][0]["items_done"] == 1200


def test_a_map_step_not_started_yet_has_no_summary_and_no_findings(
    service: Service, tmp_path: Path, wire: Any
) -> None:
    data = LocalFile(dataset(tmp_path / "small.jsonl", 10))
    run_id = submit("mapping", [data], service=service)
    assert status_of(wire, run_id)["maps"] == []
    answer = wire.get(f"{API}/runs/{run_id}/findings", {"step": "check"})
    assert answer.json() == {"findings": [], "next": None}
    assert jsonl(wire, run_id)[1] == []
    assert status_of(wire, small_run(service, tmp_path))["maps"][0]["partial"] is False
    trivial = submit("trivial", service=service)
    assert status_of(wire, trivial)["maps"] == []
