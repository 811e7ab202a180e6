"""Quotas and fair queues, measured in one run:

1. Submission throughput over HTTP with quotas on, beside the same server with quotas off
   (``gristmill serve --workers 0`` on SQLite, one JSON submission at a time from one client;
   quotas set high enough never to refuse, so each submission pays for the check in its
   transaction). Target: the check costs at most 10 %.
2. Claim throughput with the fair order (priority, then each unit's turn: its submitter's
   load when it was queued, then id), beside priority-only ordering, on SQLite and on
   PostgreSQL: ``--runs`` queued runs of ``--submitters`` submitters, claimed one at a time
   through the store.

    .venv/bin/python bench/quotas.py                # ~1 minute
    .venv/bin/python bench/quotas.py --quick        # a smoke run
    .venv/bin/python bench/quotas.py --claims-only  # part 2 only

Each database is measured in a child process (Django is configured once per process).
PostgreSQL: a fresh database on ``BENCH_POSTGRES_URL`` (default postgres@127.0.0.1:5432),
dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))

from bench.http_api import start, stop  # noqa: E402
from bench.run import _postgres_create, _postgres_drop  # noqa: E402

QUOTAS_ON = {
    "GRISTMILL_QUOTA_CONCURRENT": "10000000",
    "GRISTMILL_QUOTA_RUNS_PER_DAY": "10000000",
    "GRISTMILL_QUOTA_STORAGE_MB": "10000000",
}


def submissions_per_second(settings: dict[str, str], count: int) -> float:
    data_dir = Path(tempfile.mkdtemp(prefix="gristmill-bench-quotas-"))
    process, url = start(data_dir, workers=0, settings=settings)
    try:
        with httpx.Client(base_url=url, timeout=30) as client:

            def one() -> None:
                answer = client.post("/api/v1/pipelines/bench-1/runs", json={})
                assert answer.status_code == 201, answer.text

            for _ in range(20):  # warm up
                one()
            began = time.perf_counter()
            for _ in range(count):
                one()
            return count / (time.perf_counter() - began)
    finally:
        stop(process)


def claims_child(database_url: str, runs: int, submitters: int) -> dict[str, float]:
    """In a child process: claims per second, fair and priority-only, on ``database_url``."""
    from gristmill.app.service import Service
    from gristmill.settings import Settings
    from gristmill.store.records import NewRun

    data_dir = Path(tempfile.mkdtemp(prefix="gristmill-bench-claims-"))
    settings = Settings.from_env({}, data_dir=data_dir, database_url=database_url)
    if not database_url:
        settings = Settings.from_env({"GRISTMILL_DATA_DIR": str(data_dir)})
    service = Service.from_settings(settings, migrate=True)
    store: Any = service.store
    results: dict[str, float] = {}
    for fair in (True, False, True, False):  # twice each, interleaved; the better is kept
        queue = f"bench-{uuid.uuid4().hex[:8]}"
        expires = datetime.now(UTC) + timedelta(days=1)
        batch = [
            NewRun(
                id=str(uuid.uuid4()),
                pipeline="bench-1",
                queue=queue,
                params={},
                inputs=[],
                expires_at=expires,
                submitter=f"user:{n % submitters}",
            )
            for n in range(runs)
        ]
        for first in range(0, runs, 500):
            store.create_runs(batch[first : first + 500])
        from django.db import connections

        with connections[store.alias].cursor() as cursor:
            cursor.execute("ANALYZE")  # as autovacuum would have, on a server that has run a while
        store.fair = fair
        began = time.perf_counter()
        taken = 0
        while store.claim("bench", queues=[queue], lease=60, limit=1):
            taken += 1
        rate = taken / (time.perf_counter() - began)
        assert taken == runs, (taken, runs)
        name = "fair" if fair else "priority_only"
        results[name] = max(results.get(name, 0.0), rate)
    return results


def claims(database: str, runs: int, submitters: int) -> dict[str, float]:
    url = _postgres_create() if database == "postgres" else ""
    try:
        out = subprocess.run(
            [sys.executable, __file__, "--claims-child", url, str(runs), str(submitters)],
            capture_output=True,
            text=True,
            check=True,
            env={k: v for k, v in os.environ.items() if not k.startswith("GRISTMILL_")},
        )
        return dict(json.loads(out.stdout.strip().splitlines()[-1]))
    finally:
        if url:
            _postgres_drop(url)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--claims-child":
        print(json.dumps(claims_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--submissions", type=int, default=400)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--submitters", type=int, default=10)
    parser.add_argument("--claims-only", action="store_true", help="skip the HTTP part")
    options = parser.parse_args()
    count = 50 if options.quick else options.submissions
    runs = 100 if options.quick else options.runs
    if not options.claims_only:
        submissions(count)
    print(f"claims, one at a time ({runs} queued runs of {options.submitters} submitters)")
    for database in ("sqlite", "postgres"):
        got = claims(database, runs, options.submitters)
        ratio = got["fair"] / got["priority_only"]
        print(
            f"  {database:9} priority-only {got['priority_only']:8.1f} claims/s   "
            f"fair {got['fair']:8.1f} claims/s   ({ratio:.2f}x)"
        )


def submissions(count: int) -> None:
    """Print submissions per second over HTTP, quotas off and on."""
    off, on = [], []
    for _ in range(2):  # interleaved, the better of each kept
        off.append(submissions_per_second({}, count))
        on.append(submissions_per_second(QUOTAS_ON, count))
    best_off, best_on = max(off), max(on)
    cost = 100 * (1 - best_on / best_off)
    print(f"submissions over HTTP ({count} one at a time, SQLite, no workers)")
    print(f"  quotas off: {best_off:8.1f} runs/s")
    print(f"  quotas on:  {best_on:8.1f} runs/s   cost {cost:+.1f} % (target <= 10 %)")


if __name__ == "__main__":
    main()
