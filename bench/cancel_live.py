#!/usr/bin/env python
"""How fast a cancel and a step's progress reach the other side, on SQLite and PostgreSQL.

    python bench/cancel_live.py [--only sqlite,postgres] [--tries 30] [--seconds 5]

With ``gristmill worker --workers 2`` on a fresh database, it prints:

* **cancel latency**: from the cancel request (what ``POST /runs/{id}/cancel`` calls) to the
  running step noticing it (its ``check_cancelled()`` raising), and to the run being recorded
  ``cancelled``; p50 and p95 over ``--tries`` runs of a step that reports progress every
  millisecond. A step that checks nothing is stopped by the kill grace instead (not measured).
* **progress staleness**: how old the progress the API shows is, from the step's
  ``run.progress()`` call that reported it to the moment a reader polling every 5 ms reads it
  (what the store hands the API); p50 and p95 over every read while both workers run a
  ``--seconds`` step reporting every millisecond. The run page adds its own polling interval.
* **writes/s at 2 workers** over that window: updates of the run rows (every write a worker
  makes for a run, flush, step result or end, updates its run's row once), counted by a
  trigger the benchmark adds to its own database.

Each database is measured in a child process of this script (Django is configured once per
process). Needs what ``bench/run.py`` needs for PostgreSQL (see bench/README.md).
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 - after the path is set
    _on_sigterm,
    _percentile,
    _postgres_create,
    _postgres_drop,
    clean_env,
    log,
    start,
    stop,
    tail,
)

PIPELINES = BENCH / "live_pipelines.py"
WORKERS = 2
BACKENDS = ("sqlite", "postgres")

_COUNTER = {
    "sqlite": [
        "CREATE TABLE bench_writes (n integer NOT NULL)",
        "INSERT INTO bench_writes VALUES (0)",
        "CREATE TRIGGER bench_count AFTER UPDATE ON gristmill_run "
        "BEGIN UPDATE bench_writes SET n = n + 1; END",
    ],
    "postgresql": [
        "CREATE TABLE bench_writes (n integer NOT NULL)",
        "INSERT INTO bench_writes VALUES (0)",
        "CREATE FUNCTION bench_count() RETURNS trigger LANGUAGE plpgsql AS "
        "$$ BEGIN UPDATE bench_writes SET n = n + 1; RETURN NULL; END $$",
        "CREATE TRIGGER bench_count AFTER UPDATE ON gristmill_run "
        "FOR EACH ROW EXECUTE FUNCTION bench_count()",
    ],
}


def _writes(service: Any) -> int:
    return int(service.store._fetch("SELECT n FROM bench_writes")[0][0])


def _until(condition: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.001)
    return value


def staleness(service: Any, control: Path, seconds: float) -> dict[str, float]:
    """Both workers run a step reporting every millisecond; a reader polls the runs."""
    from gristmill.app.submission import submit, wait

    runs = [
        submit("bench-live", params={"control": str(control), "seconds": seconds}, service=service)
        for _ in range(WORKERS)
    ]
    ages: list[float] = []
    writes_before = _writes(service)
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        for run_id in runs:
            progress = service.store.get_run(run_id).progress_done
            if progress is not None:
                ages.append(time.time() * 1000 - progress)
        time.sleep(0.005)
    elapsed = time.monotonic() - started
    writes = _writes(service) - writes_before
    for run_id in runs:
        wait(run_id, timeout=seconds + 30, service=service)
    ages.sort()
    return {
        "staleness_p50_ms": _percentile(ages, 50),
        "staleness_p95_ms": _percentile(ages, 95),
        "staleness_samples": len(ages),
        "writes_per_s": writes / elapsed,
    }


def cancel_latency(service: Any, control: Path, tries: int) -> dict[str, float]:
    """Cancel a step reporting progress, one run at a time, at varied moments."""
    from gristmill.app.submission import submit, wait
    from gristmill.states import RunState

    noticed: list[float] = []
    ended: list[float] = []
    for number in range(tries):
        params = {"control": str(control), "seconds": 60}
        run_id = submit("bench-live", params=params, service=service)
        _until(lambda r=run_id: service.store.get_run(r).progress_done, 30, "the step to report")
        time.sleep((number % 10) * 0.02)  # cancel at varied moments of the step
        asked = time.time()
        if not service.store.request_cancel(run_id):
            raise RuntimeError(f"run {run_id} ended before it was cancelled")
        status = wait(run_id, timeout=30, service=service)
        done = time.time()
        if status.state != RunState.CANCELLED:
            raise RuntimeError(f"run {run_id} ended {status.state} after a cancel")
        stopped = float((control / f"{run_id}.stopped").read_text())
        noticed.append((stopped - asked) * 1000)
        ended.append((done - asked) * 1000)
    noticed.sort()
    ended.sort()
    return {
        "cancel_step_p50_ms": _percentile(noticed, 50),
        "cancel_step_p95_ms": _percentile(noticed, 95),
        "cancel_end_p50_ms": _percentile(ended, 50),
        "cancel_end_p95_ms": _percentile(ended, 95),
    }


def measure(backend: str, tries: int, seconds: float) -> dict[str, Any]:
    """Start 2 workers on a fresh database of ``backend`` and measure; the figures."""
    signal.signal(signal.SIGTERM, _on_sigterm)
    data_dir = Path(tempfile.mkdtemp(prefix=f"gristmill-live-{backend}-"))
    control = data_dir / "control"
    control.mkdir()
    env = {
        "GRISTMILL_DATA_DIR": str(data_dir),
        "GRISTMILL_PIPELINES": str(PIPELINES),
        "GRISTMILL_WORKERS": str(WORKERS),
        "GRISTMILL_DRAIN_SECONDS": "5",
        "GRISTMILL_KILL_GRACE": "1",
    }
    database_url = _postgres_create() if backend == "postgres" else ""
    if database_url:
        env["GRISTMILL_DATABASE_URL"] = database_url
    try:
        from django.db import connections

        from gristmill.app.service import Service
        from gristmill.settings import Settings

        service = Service.from_settings(Settings.from_env(env), migrate=True)
        for statement in _COUNTER[service.store.vendor]:
            service.store.sql.write((statement, []))
        worker_log = data_dir / "worker.log"
        worker = start(
            [sys.executable, "-m", "gristmill", "worker", "--workers", str(WORKERS)],
            clean_env(**env),
            worker_log,
        )
        try:
            figures = {
                **staleness(service, control, seconds),
                **cancel_latency(service, control, tries),
            }
        except Exception:
            log(f"{backend}: the worker's log:\n{tail(worker_log)}")
            raise
        finally:
            stop(worker, grace=15)
            service.store.close()
            connections.close_all()
        return figures
    finally:
        if database_url:
            _postgres_drop(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default=",".join(BACKENDS), help="sqlite,postgres")
    parser.add_argument("--tries", type=int, default=30, help="cancels per database")
    parser.add_argument("--seconds", type=float, default=5.0, help="length of the live step")
    parser.add_argument("--backend", help=argparse.SUPPRESS)  # a child measuring one
    args = parser.parse_args()
    if args.backend:
        print(json.dumps(measure(args.backend, args.tries, args.seconds)))
        return 0
    results = {}
    for backend in args.only.split(","):
        log(f"=== {backend}")
        argv = [sys.executable, __file__, "--backend", backend]
        argv += ["--tries", str(args.tries), "--seconds", str(args.seconds)]
        child = subprocess.run(argv, stdout=subprocess.PIPE, text=True, check=False)
        lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
        results[backend] = json.loads(lines[-1]) if child.returncode == 0 and lines else None
    print(f"\n{'':34}" + "".join(f"{b:>12}" for b in results))
    rows = [
        ("cancel → step stops, p50 (ms)", "cancel_step_p50_ms"),
        ("cancel → step stops, p95 (ms)", "cancel_step_p95_ms"),
        ("cancel → run cancelled, p50 (ms)", "cancel_end_p50_ms"),
        ("cancel → run cancelled, p95 (ms)", "cancel_end_p95_ms"),
        ("progress staleness, p50 (ms)", "staleness_p50_ms"),
        ("progress staleness, p95 (ms)", "staleness_p95_ms"),
        ("run-row writes/s, 2 workers", "writes_per_s"),
    ]
    for title, key in rows:
        cells = [
            f"{figures[key]:>12.0f}" if figures else f"{'failed':>12}"
            for figures in results.values()
        ]
        print(f"{title:34}" + "".join(cells))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
