#!/usr/bin/env python
"""A map step over N items of a JSON Lines file: gristmill's local executor (2 workers) on
SQLite and on PostgreSQL and its Celery executor (2 worker processes, Redis, PostgreSQL), beside
plain ``multiprocessing`` (the floor) and a Celery chord doing the same work, in one run.

    python bench/map_items.py [--items 1000000] [--only sqlite,celery-executor,chord,...]

The work: a trivial check of each item that makes a finding for 1% of the items (every finding
stored), then a reduce that counts the findings by kind and keeps 5 random examples of each
(``bench/map_pipelines.py``). gristmill runs it as a map step in batches of 1,000 and a reduce
step, submitted and waited for through ``gristmill.app.submission``; the floor is
``multiprocessing.Pool(2)`` over the same batches (byte ranges of the file, each read, parsed
and checked in a pool process, its findings sent back to the parent, which counts them and keeps
the examples): no durability, no database.

Dramatiq (``bench/dramatiq_app.py``, Redis, 2 processes): a group of one message per batch
(the same work) run with ``group(...).run()``, its results aggregated by the caller (W3's "group
+ aggregate").

The chord (``bench/celery_app.py``, Redis as broker and result backend, 2 prefork processes):
one task per batch (the same byte ranges, read, parsed and checked as the floor does), its
findings returned and so stored in the result backend, and a body that counts them and keeps the
examples.

Wall time is from the submission (for the floor, from cutting the file) to the reduce's end.
Peak memory is each process's high-water resident set (``VmHWM`` in /proc/<pid>/status, read
just before it stops, for the worker: the largest over every process under it; for the pool's
processes ``resource.getrusage(RUSAGE_CHILDREN)``, the
largest of them). Each system is measured in a child process of this script (Django is
configured once per process). Needs what ``bench/run.py`` needs for PostgreSQL.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
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

from bench.map_pipelines import check_item  # noqa: E402 - after the path is set
from bench.run import (  # noqa: E402
    CELERY_EXECUTOR_REDIS_URL,
    _on_sigterm,
    _postgres_create,
    _postgres_drop,
    children,
    clean_env,
    log,
    start,
    stop,
    tail,
)

PIPELINES = BENCH / "map_pipelines.py"
WORKERS = 2
BATCH = 1000
SYSTEMS = ("multiprocessing", "sqlite", "postgres", "celery-executor", "chord", "dramatiq")
BROKER_URL = CELERY_EXECUTOR_REDIS_URL
"""The Celery executor's broker (a Redis database, emptied before and after)."""


def make_dataset(path: Path, count: int) -> None:
    with path.open("w") as out:
        for number in range(1, count + 1):
            out.write(json.dumps({"id": number, "value": f"item {number}", "ok": True}) + "\n")


def descendants(pid: int) -> list[int]:
    found = []
    for child in children(pid):
        found += [child, *descendants(child)]
    return found


def peak_mb(pid: int) -> float:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0.0
    for line in status.splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def self_peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the floor ------------------------------------------------------------------------------


def ranges(path: Path, size: int) -> list[tuple[str, int, int]]:
    cuts, start, lines, offset = [], 0, 0, 0
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            position = 0
            for _ in range(chunk.count(b"\n")):
                position = chunk.index(b"\n", position) + 1
                lines += 1
                if lines % size == 0:
                    cuts.append((str(path), start, offset + position))
                    start = offset + position
            offset += len(chunk)
    if start < offset:
        cuts.append((str(path), start, offset))
    return cuts


def floor_batch(job: tuple[str, int, int]) -> list[tuple[int, Any]]:
    path, start, end = job
    with open(path, "rb") as stream:
        stream.seek(start)
        lines = stream.read(end - start).split(b"\n")
    found = []
    for offset, line in enumerate(lines):
        if line:
            finding = check_item(json.loads(line))
            if finding is not None:
                found.append((offset, finding))
    return found


def bench_multiprocessing(path: Path, count: int) -> dict[str, Any]:
    from gristmill import Reservoir

    began = time.perf_counter()
    jobs = ranges(path, BATCH)
    counts: dict[str, int] = {}
    examples = Reservoir(k=5, seed=1)
    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        for found in pool.imap(floor_batch, jobs):
            for _, finding in found:
                counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
                examples.add(finding["kind"], finding)
    wall = time.perf_counter() - began
    assert sum(counts.values()) == count // 100, counts
    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return {"wall_s": wall, "peak_mb": {"bench": self_peak_mb(), "workers": workers}}


# --- gristmill ------------------------------------------------------------------------------


def bench_gristmill(backend: str, path: Path, count: int) -> dict[str, Any]:
    data_dir = Path(tempfile.mkdtemp(prefix=f"gristmill-map-{backend}-"))
    env = {
        "GRISTMILL_DATA_DIR": str(data_dir),
        "GRISTMILL_PIPELINES": str(PIPELINES),
        "GRISTMILL_WORKERS": str(WORKERS),
    }
    database_url = _postgres_create() if backend in ("postgres", "celery-executor") else ""
    if database_url:
        env["GRISTMILL_DATABASE_URL"] = database_url
    if backend == "celery-executor":
        from bench.run import _flush_redis

        _flush_redis(BROKER_URL)
        env.update(GRISTMILL_EXECUTOR="celery", GRISTMILL_BROKER_URL=BROKER_URL)
    try:
        from django.db import connections

        from gristmill.app.service import Service
        from gristmill.app.submission import submit, wait
        from gristmill.authoring.inputs import LocalFile
        from gristmill.settings import Settings

        service = Service.from_settings(Settings.from_env(env), migrate=True)
        worker_log = data_dir / "worker.log"
        argv = [sys.executable, "-m", "gristmill", "worker", "--workers", str(WORKERS)]
        worker = start(argv, clean_env(**env), worker_log)
        try:
            # Warm up: a small map, so that the workers are started and connected.
            small = data_dir / "warm.jsonl"
            make_dataset(small, 2 * BATCH)
            warm = wait(
                submit("bench-map", [LocalFile(small)], service=service),
                timeout=60,
                service=service,
            )
            assert warm.state == "succeeded", warm.error
            began = time.perf_counter()
            run_id = submit("bench-map", [LocalFile(path)], service=service)
            status = wait(run_id, timeout=3600, service=service)
            wall = time.perf_counter() - began
            if status.state != "succeeded":
                raise RuntimeError(f"the run ended {status.state}: {status.error}")
            counts = status.result("reduce")["counts"]
            assert sum(counts.values()) == count // 100, counts
            assert status.result("check")["items_done"] == count
            pids = descendants(worker.pid)
            peaks = {
                "bench": self_peak_mb(),
                "supervisor": peak_mb(worker.pid),
                "workers": max((peak_mb(pid) for pid in pids), default=0.0),
                "processes": len(pids) + 1,
            }
        except Exception:
            log(f"{backend}: the worker's log:\n{tail(worker_log)}")
            raise
        finally:
            stop(worker, grace=15, strays=descendants(worker.pid))
            service.store.close()
            connections.close_all()
        return {"wall_s": wall, "peak_mb": peaks}
    finally:
        if database_url:
            _postgres_drop(database_url)
        if backend == "celery-executor":
            from bench.run import _flush_redis

            _flush_redis(BROKER_URL)
        shutil.rmtree(data_dir, ignore_errors=True)


# --- a Celery chord -------------------------------------------------------------------------


def bench_chord(path: Path, count: int) -> dict[str, Any]:
    import uuid

    from celery import chord

    from bench import celery_app

    celery_app.flush()
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-map-chord-"))
    worker_log = scratch / "celery.log"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "celery", "-A", "bench.celery_app", "worker"]
    argv += ["--concurrency", str(WORKERS), "--pool", "prefork", "--without-gossip"]
    argv += ["--without-mingle", "--without-heartbeat", "-Q", celery_app.QUEUE]
    argv += ["--loglevel", "WARNING", "-n", f"map-{uuid.uuid4().hex[:6]}@%h"]
    worker = start(argv, clean_env(PYTHONPATH=pythonpath), worker_log)
    try:
        celery_app.ping.delay().get(timeout=60)
        # Warm up as gristmill does: a small chord.
        small = scratch / "warm.jsonl"
        make_dataset(small, 2 * BATCH)
        warm = [celery_app.map_batch.s(*job) for job in ranges(small, BATCH)]
        chord(warm)(celery_app.map_reduce.s()).get(timeout=60)
        began = time.perf_counter()
        header = [celery_app.map_batch.s(*job) for job in ranges(path, BATCH)]
        result = chord(header)(celery_app.map_reduce.s()).get(timeout=3600)
        wall = time.perf_counter() - began
        counts = result["counts"]
        assert sum(counts.values()) == count // 100, counts
        pids = descendants(worker.pid)
        peaks = {
            "bench": self_peak_mb(),
            "supervisor": peak_mb(worker.pid),
            "workers": max((peak_mb(pid) for pid in pids), default=0.0),
            "processes": len(pids) + 1,
        }
    except Exception:
        log(f"chord: the worker's log:\n{tail(worker_log)}")
        raise
    finally:
        stop(worker, grace=15, strays=descendants(worker.pid))
        celery_app.app.close()
        celery_app.flush()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"wall_s": wall, "peak_mb": peaks}


# --- a Dramatiq group ------------------------------------------------------------------------


def bench_dramatiq(path: Path, count: int) -> dict[str, Any]:
    import dramatiq

    from bench import dramatiq_app
    from gristmill import Reservoir

    dramatiq_app.flush()
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-map-dramatiq-"))
    worker_log = scratch / "dramatiq.log"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    argv = [sys.executable, "-m", "dramatiq", "bench.dramatiq_app"]
    argv += ["--processes", str(WORKERS), "--queues", dramatiq_app.QUEUE]
    worker = start(argv, clean_env(PYTHONPATH=pythonpath), worker_log)

    def run(source: Path) -> dict[str, int]:
        messages = (dramatiq_app.map_batch.message(*job) for job in ranges(source, BATCH))
        group = dramatiq.group(messages).run()
        counts: dict[str, int] = {}
        examples = Reservoir(k=5, seed=1)
        for found in group.get_results(block=True, timeout=3_600_000):
            for _, finding in found:
                counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
                examples.add(finding["kind"], finding)
        return counts

    try:
        small = scratch / "warm.jsonl"
        make_dataset(small, 2 * BATCH)
        run(small)  # warm up, and wait for the worker
        began = time.perf_counter()
        counts = run(path)
        wall = time.perf_counter() - began
        assert sum(counts.values()) == count // 100, counts
        pids = descendants(worker.pid)
        peaks = {
            "bench": self_peak_mb(),
            "supervisor": peak_mb(worker.pid),
            "workers": max((peak_mb(pid) for pid in pids), default=0.0),
            "processes": len(pids) + 1,
        }
    except Exception:
        log(f"dramatiq: the worker's log:\n{tail(worker_log)}")
        raise
    finally:
        stop(worker, grace=15, strays=descendants(worker.pid))
        dramatiq_app.flush()
        shutil.rmtree(scratch, ignore_errors=True)
    return {"wall_s": wall, "peak_mb": peaks}


def measure(system: str, path: Path, count: int) -> dict[str, Any]:
    signal.signal(signal.SIGTERM, _on_sigterm)
    if system == "multiprocessing":
        return bench_multiprocessing(path, count)
    if system == "chord":
        return bench_chord(path, count)
    if system == "dramatiq":
        return bench_dramatiq(path, count)
    return bench_gristmill(system, path, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=1_000_000, help="items in the dataset")
    parser.add_argument("--only", default=",".join(SYSTEMS), help=",".join(SYSTEMS))
    parser.add_argument("--system", help=argparse.SUPPRESS)  # a child measuring one
    parser.add_argument("--dataset", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:
        print(json.dumps(measure(args.system, Path(args.dataset), args.items)))
        return 0
    work = Path(tempfile.mkdtemp(prefix="gristmill-map-data-"))
    try:
        dataset = work / "items.jsonl"
        make_dataset(dataset, args.items)
        log(f"dataset: {args.items:,} items, {dataset.stat().st_size / 1e6:.0f} MB")
        results: dict[str, Any] = {}
        for system in args.only.split(","):
            log(f"=== {system}")
            argv = [sys.executable, __file__, "--system", system, "--dataset", str(dataset)]
            child = subprocess.run(
                [*argv, "--items", str(args.items)],
                stdout=subprocess.PIPE,
                text=True,
                check=False,
                cwd=ROOT,
                env=clean_env(),
            )
            lines = [line for line in child.stdout.splitlines() if line.startswith("{")]
            results[system] = json.loads(lines[-1]) if child.returncode == 0 and lines else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    floor = (results.get("multiprocessing") or {}).get("wall_s")
    print(f"\n{args.items:,} items, batches of {BATCH:,}, {WORKERS} workers, 1% findings")
    print("peak memory: peak RSS (VmHWM) of each process; 'worker MB' the largest under the worker")
    print(
        f"{'system':18}{'wall s':>9}{'items/s':>11}{'x floor':>9}"
        f"{'bench MB':>10}{'superv. MB':>11}{'worker MB':>11}{'procs':>7}"
    )
    for system, figures in results.items():
        if figures is None:
            print(f"{system:18}{'failed':>9}")
            continue
        wall = figures["wall_s"]
        peaks = figures["peak_mb"]
        ratio = f"{wall / floor:.2f}" if floor else "-"
        superv = peaks.get("supervisor")
        print(
            f"{system:18}{wall:>9.2f}{args.items / wall:>11,.0f}{ratio:>9}"
            f"{peaks['bench']:>10.0f}{(f'{superv:.0f}' if superv else '-'):>11}"
            f"{peaks['workers']:>11.0f}{peaks.get('processes', '-'):>7}"
        )
    print()
    for ours, theirs, target, label in (
        ("sqlite", "multiprocessing", 2.0, "local executor on SQLite, wall time vs the floor"),
        ("celery-executor", "chord", 2.0, "Celery executor, items/s vs a Celery chord"),
    ):
        mine, other = results.get(ours), results.get(theirs)
        if not mine or not other:
            continue
        if ours == "sqlite":
            value = mine["wall_s"] / other["wall_s"]
            verdict = "met" if value <= target else "MISSED"
            print(f"{label}: {value:.2f}x (target <= {target:.0f}x) {verdict}")
        else:
            value = other["wall_s"] / mine["wall_s"]
            verdict = "met" if value >= target else "MISSED"
            print(f"{label}: {value:.2f}x (target >= {target:.0f}x) {verdict}")
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
