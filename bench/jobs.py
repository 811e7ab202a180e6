"""W1 of shared peer figures: 2,000 trivial jobs submitted, then all waited for, in jobs/s.

gristmill's local executor (2 worker processes) on SQLite and on PostgreSQL, submitting with
bulk submission (``submit_many``, 1,000 runs per transaction), beside Dramatiq 2 on Redis (the
fastest peer: ``group(...).run()`` pipelines its sends) and Celery on Redis (``delay`` back to
back), all measured in the same run, each in a child process of its own, in interleaved rounds
(one sample of each system per round, so that a change in the machine's load hits all alike).
gristmill's Celery executor (2 worker processes, Redis broker, PostgreSQL) runs beside them.
Prints jobs/s and the ratios the targets name: gristmill SQLite / Dramatiq >= 1, gristmill
PostgreSQL / Celery >= 1, gristmill's Celery executor / Celery >= 1.

    python bench/jobs.py            # 2,000 jobs per system, 3 rounds
    python bench/jobs.py --quick    # 200 jobs, 1 round: a smoke run

Needs the ``bench`` extra (Dramatiq), ``celery`` and ``postgres`` extras, Redis and PostgreSQL
as for ``bench/run.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.run import (  # noqa: E402 - the path above first
    PIPELINES,
    WORKERS,
    BenchError,
    _postgres_create,
    _postgres_drop,
    _wait_for_ping,
    children,
    clean_env,
    log,
    start,
    stop,
    tail,
)

SYSTEMS = ("sqlite", "postgres", "celery-executor", "dramatiq", "celery")
LABELS = {
    "sqlite": "gristmill SQLite (bulk)",
    "postgres": "gristmill PostgreSQL (bulk)",
    "celery-executor": "gristmill Celery executor, Redis + PostgreSQL (bulk)",
    "dramatiq": "Dramatiq+Redis",
    "celery": "Celery+Redis",
}
JOBS = 2000
WARMUP = 20
TIMEOUT = 120.0


def _timed(submit: Callable[[], Any], wait: Callable[[Any], None]) -> float:
    started = time.perf_counter()
    handle = submit()
    wait(handle)
    return time.perf_counter() - started


def _samples(name: str, jobs: int, samples: int, run: Callable[[int], float]) -> dict[str, Any]:
    run(WARMUP)
    rates = []
    for number in range(samples):
        seconds = run(jobs)
        rates.append(jobs / seconds)
        log(f"{name}: sample {number + 1}: {rates[-1]:,.0f} jobs/s")
    return {"system": name, "label": LABELS[name], "rates": rates, "jobs": jobs}


# --- gristmill --------------------------------------------------------------------------


def bench_gristmill(backend: str, jobs: int, samples: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"gristmill-jobs-{backend}-"))
    database_url = ""
    try:
        env = {
            "GRISTMILL_DATA_DIR": str(data_dir),
            "GRISTMILL_PIPELINES": str(PIPELINES),
            "GRISTMILL_WORKERS": str(WORKERS),
            "GRISTMILL_DRAIN_SECONDS": "5",
            "GRISTMILL_KILL_GRACE": "1",
        }
        if backend in ("postgres", "celery-executor"):
            database_url = _postgres_create()
            env["GRISTMILL_DATABASE_URL"] = database_url
        if backend == "celery-executor":
            from bench.run import CELERY_EXECUTOR_REDIS_URL, _flush_redis

            _flush_redis(CELERY_EXECUTOR_REDIS_URL)
            env.update(GRISTMILL_EXECUTOR="celery", GRISTMILL_BROKER_URL=CELERY_EXECUTOR_REDIS_URL)
        from django.db import connections

        from gristmill.app.service import Service
        from gristmill.app.submission import (
            MAX_BULK_ENTRIES,
            Entry,
            get_run,
            submit_many,
            wait_many,
        )
        from gristmill.settings import Settings
        from gristmill.states import RunState

        service = Service.from_settings(Settings.from_env(env), migrate=True)
        worker_log = data_dir / "worker.log"
        worker = start(
            [sys.executable, "-m", "gristmill", "worker", "--workers", str(WORKERS)],
            clean_env(**env),
            worker_log,
        )

        def submit(count: int) -> list[str]:
            ids: list[str] = []
            for first in range(0, count, MAX_BULK_ENTRIES):
                chunk = [Entry()] * min(MAX_BULK_ENTRIES, count - first)
                ids.extend(submit_many("bench-1", chunk, service=service))
            return ids

        def wait_all(ids: list[str]) -> None:
            try:
                statuses = wait_many(ids, timeout=TIMEOUT, service=service)
            except TimeoutError as error:
                raise BenchError(f"{error}; worker log:\n{tail(worker_log)}") from None
            for status in statuses:
                if status.state != RunState.SUCCEEDED:
                    raise BenchError(f"run {status.id} ended {status.state}: {status.error}")
            result = get_run(ids[0], service=service).steps[0].result
            if result != {"ok": True, "n": 1}:
                raise BenchError(f"run {ids[0]}: unexpected result {result!r}")

        strays: list[int] = []
        try:
            figures = _samples(
                backend, jobs, samples, lambda n: _timed(lambda: submit(n), wait_all)
            )
            strays = _descendants(worker.pid)
        finally:
            stop(worker, grace=15, strays=strays or _descendants(worker.pid))
            service.store.close()
            connections.close_all()
        return figures
    finally:
        if database_url:
            _postgres_drop(database_url)
        shutil.rmtree(data_dir, ignore_errors=True)


def _descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *_descendants(child)]
    return found


# --- Dramatiq ---------------------------------------------------------------------------


def bench_dramatiq(jobs: int, samples: int) -> dict[str, Any]:
    import dramatiq

    from bench import dramatiq_app

    dramatiq_app.flush()
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-jobs-dramatiq-"))
    worker_log = scratch / "dramatiq.log"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "dramatiq", "bench.dramatiq_app"]
    argv += ["--processes", str(WORKERS), "--queues", dramatiq_app.QUEUE]
    worker = start(
        argv,
        clean_env(PYTHONPATH=pythonpath),
        worker_log,
    )

    def submit(count: int) -> Any:
        return dramatiq.group(dramatiq_app.step.message(0) for _ in range(count)).run()

    def wait_all(group: Any) -> None:
        results = list(group.get_results(block=True, timeout=int(TIMEOUT * 1000)))
        if results != [1] * len(results):
            raise BenchError(f"dramatiq jobs returned {set(results)}, expected 1")

    try:
        return _samples("dramatiq", jobs, samples, lambda n: _timed(lambda: submit(n), wait_all))
    except Exception as error:
        raise BenchError(f"{error}; worker log:\n{tail(worker_log)}") from error
    finally:
        stop(worker, grace=15)
        dramatiq_app.flush()
        shutil.rmtree(scratch, ignore_errors=True)


# --- Celery -----------------------------------------------------------------------------


def bench_celery(jobs: int, samples: int) -> dict[str, Any]:
    from bench import celery_app
    from bench.run import CeleryDriver

    celery_app.flush()
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-jobs-celery-"))
    worker_log = scratch / "celery.log"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker"]
    argv += ["--concurrency", str(WORKERS), "--pool", "prefork", "--without-gossip"]
    argv += ["--without-mingle", "--without-heartbeat", "-Q", celery_app.QUEUE]
    argv += ["--loglevel", "WARNING", "-n", f"jobs-{uuid.uuid4().hex[:6]}@%h"]
    worker = start(argv, clean_env(PYTHONPATH=pythonpath), worker_log)
    try:
        driver = CeleryDriver(worker, worker_log)
        _wait_for_ping(driver)

        def submit(count: int) -> list[Any]:
            return [driver.submit(False) for _ in range(count)]

        def wait_all(handles: list[Any]) -> None:
            for handle in handles:
                driver.wait(handle)

        return _samples("celery", jobs, samples, lambda n: _timed(lambda: submit(n), wait_all))
    finally:
        stop(worker, grace=15)
        celery_app.app.close()
        celery_app.flush()
        shutil.rmtree(scratch, ignore_errors=True)


# --- parent -----------------------------------------------------------------------------


def run_system(system: str, jobs: int, samples: int) -> dict[str, Any]:
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    if system in ("sqlite", "postgres", "celery-executor"):
        return bench_gristmill(system, jobs, samples)
    if system == "dramatiq":
        return bench_dramatiq(jobs, samples)
    return bench_celery(jobs, samples)


def run_child(system: str, quick: bool) -> dict[str, Any]:
    """One sample of ``system``, measured in a child process."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--system", system]
    if quick:
        argv.append("--quick")
    log(f"=== {LABELS[system]}")
    done = subprocess.run(argv, stdout=subprocess.PIPE, timeout=900, check=False)
    lines = [line for line in done.stdout.decode().splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        return {"system": system, "label": LABELS[system], "error": f"exit {done.returncode}"}
    return dict(json.loads(lines[-1]))


def report(results: Sequence[dict[str, Any]]) -> str:
    by = {r["system"]: r for r in results}
    median = {k: statistics.median(r["rates"]) for k, r in by.items() if "rates" in r}
    lines = [f"| system | W1 jobs/s (median of {len(results[0].get('rates', []))}) | samples |"]
    lines.append("| --- | --- | --- |")
    for result in results:
        if "rates" not in result:
            lines.append(f"| {result['label']} | failed: {result['error']} | |")
            continue
        samples = ", ".join(f"{rate:,.0f}" for rate in result["rates"])
        lines.append(f"| {result['label']} | {median[result['system']]:,.0f} | {samples} |")
    for ours, theirs in (
        ("sqlite", "dramatiq"),
        ("postgres", "celery"),
        ("celery-executor", "celery"),
    ):
        if ours in median and theirs in median:
            ratio = median[ours] / median[theirs]
            verdict = "met" if ratio >= 1 else "missed"
            lines.append(
                f"{LABELS[ours]} / {LABELS[theirs]}: {ratio:.2f}x (target >= 1: {verdict})"
            )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 jobs, 1 sample")
    parser.add_argument("--only", help="comma-separated systems: " + ",".join(SYSTEMS))
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    jobs, rounds = (200, 1) if args.quick else (JOBS, 3)
    if args.system:
        print(json.dumps(run_system(args.system, jobs, 1)), flush=True)
        return 0
    systems = args.only.split(",") if args.only else list(SYSTEMS)
    results = {s: {"system": s, "label": LABELS[s], "rates": [], "jobs": jobs} for s in systems}
    for number in range(rounds):
        log(f"--- round {number + 1} of {rounds}")
        for system in systems:
            sample = run_child(system, args.quick)
            if "rates" not in sample:
                results[system]["error"] = sample["error"]
            else:
                results[system]["rates"].extend(sample["rates"])
    for result in results.values():
        if "error" in result:
            del result["rates"]
    print(report(list(results.values())))
    return 0 if all("rates" in r for r in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
