#!/usr/bin/env python
"""Live partial results of a million-item map step, over HTTP: how soon after the submission
the run's status shows findings with examples (marked partial), and what a status read costs
while the map runs and once it has ended, beside the status read of a one-step run measured in
the same run under the same load (the baseline).

    python bench/map_status.py [--items 1000000] [--reads 200]

Everything runs on this machine: ``gristmill serve --port 0 --workers 2`` on a temporary
SQLite data directory with ``bench/map_pipelines.py`` (the map step of ``bench/map_items.py``:
batches of 1,000 items, a finding for 1% of them) and ``bench/pipelines.py``; this process is
the client (httpx, one keep-alive connection). While the map runs, the client reads the map
run's status and the one-step run's status in turn, back to back, until the map has ended;
then ``--reads`` more of each. It also times the first page of findings and the whole JSON
Lines download.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.http_api import PAYLOAD, percentile, start, stop  # noqa: E402

MAP_PIPELINES = BENCH / "map_pipelines.py"


def write_items(path: Path, count: int) -> Path:
    with path.open("w") as out:
        for number in range(1, count + 1):
            out.write(json.dumps({"id": number, "value": f"item {number}", "ok": True}) + "\n")
    return path


def timed(client: httpx.Client, url: str) -> tuple[float, Any]:
    started = time.perf_counter()
    answer = client.get(url)
    elapsed = time.perf_counter() - started
    answer.raise_for_status()
    return elapsed, answer.json()


def ms(values: list[float]) -> str:
    if not values:
        return "-"
    return f"{statistics.median(values) * 1000:.1f} / {percentile(values, 0.95) * 1000:.1f}"


def measure(items: int, reads: int, work: Path) -> dict[str, Any]:
    data = write_items(work / "items.jsonl", items)
    process, url = start(work / "data", ("--pipelines", str(MAP_PIPELINES)))
    try:
        with httpx.Client(base_url=url, timeout=120) as client:
            one = client.post(
                "/api/v1/pipelines/bench-file/runs",
                files={"files": ("one.txt", PAYLOAD, "text/plain")},
            ).json()["id"]
            one_url = f"/api/v1/runs/{one}"
            while client.get(one_url).json()["state"] != "succeeded":
                time.sleep(0.05)
            with data.open("rb") as file:
                submitted = time.perf_counter()
                answer = client.post(
                    "/api/v1/pipelines/bench-map/runs", files={"files": (data.name, file)}
                )
            answer.raise_for_status()
            sent = time.perf_counter()
            run_url = f"/api/v1/runs/{answer.json()['id']}"
            first_partial = None
            partials = 0
            running_map: list[float] = []
            running_one: list[float] = []
            while True:
                elapsed, status = timed(client, run_url)
                maps = status["maps"]
                if maps and maps[0]["partial"]:
                    partials += 1
                    running_map.append(elapsed)
                    if first_partial is None and maps[0]["counts"] and maps[0]["examples"]:
                        first_partial = time.perf_counter() - sent
                if maps and not maps[0]["partial"]:
                    break
                running_one.append(timed(client, one_url)[0])
            map_ended = time.perf_counter() - sent
            while client.get(run_url).json()["state"] == "running":
                time.sleep(0.05)
            ended_map = [timed(client, run_url)[0] for _ in range(reads)]
            ended_one = [timed(client, one_url)[0] for _ in range(reads)]
            [summary] = client.get(run_url).json()["maps"]
            page_time, page = timed(client, f"{run_url}/findings?step=check&limit=1000")
            started = time.perf_counter()
            lines = 0
            with client.stream("GET", f"{run_url}/findings.jsonl?step=check") as stream:
                for chunk in stream.iter_lines():
                    lines += bool(chunk)
            download = time.perf_counter() - started
    finally:
        stop(process)
    return {
        "items": items,
        "batches": summary["batches_total"],
        "upload s": sent - submitted,
        "first partial findings s": first_partial,
        "map ended s": map_ended,
        "partial statuses seen": partials,
        "status while running, map run p50/p95 ms": ms(running_map),
        "status while running, one-step run p50/p95 ms (baseline)": ms(running_one),
        "status ended, map run p50/p95 ms": ms(ended_map),
        "status ended, one-step run p50/p95 ms (baseline)": ms(ended_one),
        "ratio ended map / one-step (p50)": statistics.median(ended_map)
        / statistics.median(ended_one),
        "findings: first page of 1,000 ms": page_time * 1000,
        "findings: first page size": len(page["findings"]),
        "findings.jsonl: lines": lines,
        "findings.jsonl: s": download,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000)
    parser.add_argument("--reads", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gristmill-map-status-") as work:
        figures = measure(args.items, args.reads, Path(work))
    for name, value in figures.items():
        shown = (
            f"{value:,.2f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else str(value)
        )
        print(f"{name:<60} {shown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
