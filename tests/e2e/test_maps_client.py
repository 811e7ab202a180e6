"""Map steps from another machine, against a live ``gristmill serve``: the Python client (sync
and async) and the gristmill command read a map step's summary and findings, download them
as JSON Lines, and retry a failed batch."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from gristmill.client import AsyncClient, Client, ConflictError, NotFoundError
from tests.e2e.conftest import Server, _clean_env
from tests.integration.test_maps import dataset, expected

ITEMS = 1200
BAD = 777
SEVENS = ITEMS // 7
FIFTIES = len([n for n in range(50, ITEMS + 1, 50) if n % 7])


def failed_run(client: Client, tmp_path: Path) -> tuple[str, Path]:
    """A run of mapping-continue whose item 777 raised: it succeeds, listing batch 2."""
    control = tmp_path / "control"
    control.mkdir()
    (control / "broken").touch()
    data = dataset(tmp_path / "items.jsonl", ITEMS)
    run = client.submit("mapping-continue", data, params={"control": str(control), "bad": BAD})
    assert client.wait(run["id"], timeout=120)["state"] == "succeeded"
    return run["id"], control


def gristmill(server: Server, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args, "--server", server.url],
        cwd=cwd,
        env=_clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def client(server: Server) -> Any:
    with Client(server.url, token="") as anonymous:
        yield anonymous


def test_the_python_client_reads_findings_downloads_them_and_retries_a_failed_batch(
    client: Client, tmp_path: Path
) -> None:
    run_id, control = failed_run(client, tmp_path)
    [summary] = client.status(run_id)["maps"]
    assert (summary["step"], summary["partial"], summary["items_failed"]) == ("check", False, 1)
    assert summary["failed_batches"][0]["failed_items"] == [
        {"item": BAD, "error": f"ValueError: cannot check item {BAD}"}
    ]
    without = [n for n in expected(ITEMS) if n != BAD]
    found = list(client.findings(run_id, "check"))
    assert [f["item"] for f in found] == without
    page = client.findings_page(run_id, "check", limit=10)
    assert page["findings"] == found[: len(page["findings"])] and page["next"] is not None
    rounds = list(client.findings(run_id, "check", kind="round"))
    assert len(rounds) == FIFTIES and {f["kind"] for f in rounds} == {"round"}
    saved = client.download_findings(run_id, "check", tmp_path / "out" / "check.jsonl")
    assert [json.loads(line) for line in saved.read_text().splitlines()] == found
    assert sorted(p.name for p in saved.parent.iterdir()) == ["check.jsonl"]
    with pytest.raises(NotFoundError) as missing:
        list(client.findings(run_id, "nope"))
    assert missing.value.details == {"query.step": [missing.value.message]}

    (control / "broken").unlink()
    assert client.retry_batches(run_id) == {"batches": 1, "state": "running"}
    assert client.wait(run_id, timeout=120)["state"] == "succeeded"
    assert [f["item"] for f in client.findings(run_id, "check")] == expected(ITEMS)
    with pytest.raises(ConflictError, match="the run has no failed batches to retry"):
        client.retry_batches(run_id)


def test_the_async_client_has_the_same_map_methods(server: Server, tmp_path: Path) -> None:
    with Client(server.url, token="") as client:
        run_id, control = failed_run(client, tmp_path)

    async def use() -> tuple[list[int], Path, dict[str, Any]]:
        async with AsyncClient(server.url, token="") as remote:
            items = [f["item"] async for f in remote.findings(run_id, "check")]
            saved = await remote.download_findings(
                run_id, "check", tmp_path / "sevens.jsonl", kind="seven"
            )
            (control / "broken").unlink()
            retried = await remote.retry_batches(run_id)
            await remote.wait(run_id, timeout=120)
            with pytest.raises(ConflictError):
                await remote.retry_batches(run_id)
            return items, saved, retried

    items, saved, retried = asyncio.run(use())
    assert items == [n for n in expected(ITEMS) if n != BAD]
    assert len(saved.read_text().splitlines()) == SEVENS - 1
    assert retried == {"batches": 1, "state": "running"}


def test_the_command_shows_items_prints_and_saves_findings_and_retries(
    server: Server, client: Client, tmp_path: Path
) -> None:
    run_id, control = failed_run(client, tmp_path)
    status = gristmill(server, "status", run_id, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    lines = status.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("  check: succeeded"))
    assert lines[at + 1 : at + 4] == [
        "    items 1,200 of 1,200 (1 failed), batches 3 of 3",
        f"    findings: seven {SEVENS - 1}, fifty {FIFTIES}, round {FIFTIES}",
        "    failed batch 2 (items 501-1,000): 1 failed items",
    ]

    printed = gristmill(
        server, "findings", run_id, "--step", "check", "--kind", "round", cwd=tmp_path
    )
    assert printed.returncode == 0, printed.stderr
    rounds = [json.loads(line) for line in printed.stdout.splitlines()]
    assert len(rounds) == FIFTIES and {f["kind"] for f in rounds} == {"round"}
    saved = gristmill(server, "findings", run_id, "-s", "check", "-o", "all.jsonl", cwd=tmp_path)
    assert saved.returncode == 0, saved.stderr
    written = (tmp_path / "all.jsonl").read_text().splitlines()
    assert [json.loads(line)["item"] for line in written] == [
        n for n in expected(ITEMS) if n != BAD
    ]
    unknown = gristmill(server, "findings", run_id, "-s", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    message = "the run has no map step 'nope' (its map steps: 'check')"
    assert unknown.stderr.strip() == f"error: query.step: {message}"

    (control / "broken").unlink()
    retried = gristmill(server, "retry-batches", run_id, cwd=tmp_path)
    assert retried.returncode == 0, retried.stderr
    assert retried.stdout.strip() == f"run {run_id} running: 1 batch queued again"
    assert client.wait(run_id, timeout=120)["state"] == "succeeded"
    again = gristmill(server, "retry-batches", run_id, cwd=tmp_path)
    assert again.returncode == 2
    assert again.stderr.strip() == "error: the run has no failed batches to retry"
