#!/usr/bin/env python
"""gristmill benchmarks, beside plain ``multiprocessing`` (the floor) and Celery on Redis.

    python bench/run.py [--only sqlite,postgres,postgres-celery,multiprocessing,celery] [--quick]
                        [--json-out results.json]

Every system runs the same work with 2 worker processes, each in its own child process of this
script (Django can be configured only once per process): throughput of single-step jobs,
per-step overhead of ten-step pipelines (many in flight, and one at a time), the idle
submit-to-done round trip, and the resident memory of the worker processes. The parent prints
one table and the target checks, as ratios between systems measured in the same run.
See bench/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
PIPELINES = BENCH / "pipelines.py"

SYSTEMS = ("sqlite", "postgres", "postgres-nosync", "postgres-celery", "multiprocessing", "celery")
LABELS = {
    "sqlite": "gristmill SQLite",
    "postgres": "gristmill PostgreSQL",
    # The same, on a database with synchronous_commit=off: no fsync before a submission is
    # acknowledged, as with Celery on a Redis that keeps nothing on disk. Not gristmill's
    # default; shown to measure what durable submission costs.
    "postgres-nosync": "PG, no fsync",
    # gristmill's Celery executor: PostgreSQL, and Celery workers on Redis (a database of its
    # own on the benchmark's Redis).
    "postgres-celery": "Celery executor, PG",
    "multiprocessing": "multiprocessing",
    "celery": "Celery+Redis",
}
WORKERS = 2
CELERY_EXECUTOR_REDIS_URL = os.environ.get(
    "BENCH_CELERY_EXECUTOR_REDIS_URL", "redis://127.0.0.1:6379/14"
)
"""The broker of gristmill's Celery executor: a Redis database emptied before and after."""
STEPS = 10
POSTGRES_URL = os.environ.get("BENCH_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/postgres")
WAIT_SLICE = 5.0
"""Longest single wait before checking that the workers are still alive."""
WAIT_TIMEOUT = 120.0
"""Longest wait for one job before the benchmark gives up."""
CHILD_TIMEOUT = 900.0
"""Longest one system's measurements may take before the parent stops it."""
CHILD_CLEANUP = 90.0
"""How long a stopped child gets to stop its workers (at most 15 + 15 s) and drop its database
before it is killed."""


class BenchError(RuntimeError):
    """A measurement could not be made or a job did not end as it should."""


@dataclass(frozen=True)
class Counts:
    """How many jobs each measurement uses."""

    throughput: int = 2000
    """Single-step jobs submitted back to back, then waited for."""
    in_flight: int = 100
    """Ten-step runs submitted together, then waited for."""
    sequential: int = 20
    """Ten-step runs one after another."""
    round_trip: int = 200
    """Single-step jobs one after another, each waited for before the next."""
    warmup: int = 10
    """Jobs of each kind run before any timing."""

    def scaled(self, factor: int) -> Counts:
        return Counts(
            *(max(1, value // factor) for value in asdict(self).values())  # field order
        )


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --- processes ------------------------------------------------------------------------------


def children(pid: int) -> list[int]:
    """The process ids whose parent is ``pid`` (from /proc; no psutil needed)."""
    listing = Path(f"/proc/{pid}/task/{pid}/children")
    with contextlib.suppress(OSError):
        return [int(part) for part in listing.read_text().split()]
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        # Fields after the command name, which is in parentheses and may hold anything.
        fields = stat[stat.rindex(")") + 2 :].split()
        if int(fields[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB (MiB), from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise BenchError(f"process {pid} has no VmRSS (a zombie?)")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def start(argv: Sequence[str], env: dict[str, str], log_path: Path) -> subprocess.Popen[bytes]:
    """Start a process in its own session (so its whole group can be killed), output to a file."""
    with log_path.open("wb") as output:
        return subprocess.Popen(
            list(argv),
            env=env,
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def stop(process: subprocess.Popen[bytes], *, grace: float, strays: Sequence[int] = ()) -> None:
    """SIGTERM, up to ``grace`` seconds to exit, then SIGKILL its process group and ``strays``
    (worker processes that lead groups of their own)."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(grace)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    deadline = time.monotonic() + grace
    for pid in strays:
        # gristmill workers notice a dead supervisor within a second and drain.
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if alive(pid):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)


def tail(path: Path, lines: int = 30) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()
    except OSError:
        return "(no log)"
    return "\n".join(text[-lines:]) or "(empty log)"


def clean_env(**extra: str) -> dict[str, str]:
    """This process's environment without gristmill or Django settings, plus ``extra``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("GRISTMILL_") and key != "DJANGO_SETTINGS_MODULE"
    }
    env.update(extra)
    return env


# --- the measurements, alike for every system -----------------------------------------------


class Driver(ABC):
    """One system under test: submit a job, wait for it (checking how it ended)."""

    @abstractmethod
    def submit(self, ten: bool) -> Any:
        """Submit a single-step job, or a ten-step pipeline if ``ten``; return a handle."""

    @abstractmethod
    def wait(self, handle: Any) -> None:
        """Block until the job is done; :class:`BenchError` unless it succeeded as expected."""

    @abstractmethod
    def processes(self) -> tuple[int | None, list[int]]:
        """(the workers' parent process if it is not this one, the worker processes)."""

    def check(self) -> None:  # noqa: B027 - optional
        """Raise :class:`BenchError` if the workers are gone."""


def _wait_all(driver: Driver, handles: Sequence[Any]) -> None:
    for handle in handles:
        driver.wait(handle)


def _percentile(values: Sequence[float], pct: int) -> float:
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[pct - 1]


def measure(name: str, driver: Driver, counts: Counts) -> dict[str, Any]:
    """Run every measurement on ``driver``; figures in jobs/s, ms and MB."""
    clock = time.perf_counter
    log(f"{name}: warming up")
    _wait_all(driver, [driver.submit(False) for _ in range(counts.warmup)])
    _wait_all(driver, [driver.submit(True) for _ in range(counts.warmup)])
    for _ in range(3):
        driver.wait(driver.submit(False))

    log(f"{name}: throughput, {counts.throughput} single-step jobs")
    started = clock()
    handles = [driver.submit(False) for _ in range(counts.throughput)]
    submitted = clock()
    _wait_all(driver, handles)
    finished = clock()
    throughput = counts.throughput / (finished - started)
    submit_rate = counts.throughput / (submitted - started)

    log(f"{name}: {counts.in_flight} ten-step runs in flight")
    started = clock()
    handles = [driver.submit(True) for _ in range(counts.in_flight)]
    _wait_all(driver, handles)
    in_flight_ms = (clock() - started) * 1000 / (counts.in_flight * STEPS)

    log(f"{name}: {counts.sequential} ten-step runs one at a time")
    walls = []
    for _ in range(counts.sequential):
        started = clock()
        driver.wait(driver.submit(True))
        walls.append(clock() - started)
    sequential_ms = statistics.mean(walls) * 1000 / STEPS

    log(f"{name}: round trip, {counts.round_trip} single-step jobs in a row")
    trips = []
    for _ in range(counts.round_trip):
        started = clock()
        driver.wait(driver.submit(False))
        trips.append((clock() - started) * 1000)

    driver.check()
    parent, workers = driver.processes()
    if len(workers) != WORKERS:
        raise BenchError(f"{name}: expected {WORKERS} worker processes, found {workers}")
    worker_rss = [round(rss_mb(pid), 1) for pid in workers]
    figures = {
        "system": name,
        "label": LABELS[name],
        "throughput": throughput,
        "submit_rate": submit_rate,
        "step_ms_in_flight": in_flight_ms,
        "step_ms_sequential": sequential_ms,
        "round_trip_p50_ms": statistics.median(trips),
        "round_trip_p95_ms": _percentile(trips, 95),
        "worker_rss_mb": worker_rss,
        "worker_rss_max_mb": max(worker_rss),
        "parent_rss_mb": round(rss_mb(parent), 1) if parent is not None else None,
    }
    log(
        f"{name}: {throughput:.0f} jobs/s, {in_flight_ms:.2f} / {sequential_ms:.2f} ms/step, "
        f"round trip p50 {figures['round_trip_p50_ms']:.2f} ms, worker RSS {worker_rss} MB"
    )
    return figures


# --- gristmill ------------------------------------------------------------------------------


class GristmillDriver(Driver):
    """Runs through ``gristmill.app.submission.submit/wait``, against a ``gristmill worker``."""

    def __init__(self, service: Any, worker: subprocess.Popen[bytes], worker_log: Path):
        from gristmill.app.submission import submit, wait
        from gristmill.states import RunState, StepState

        self.service = service
        self.worker = worker
        self.worker_log = worker_log
        self._submit = submit
        self._wait = wait
        self._succeeded = RunState.SUCCEEDED
        self._step_succeeded = StepState.SUCCEEDED

    def submit(self, ten: bool) -> tuple[str, bool]:
        run_id: str = self._submit("bench-10" if ten else "bench-1", service=self.service)
        return run_id, ten

    def wait(self, handle: tuple[str, bool]) -> None:
        run_id, ten = handle
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            try:
                status = self._wait(run_id, timeout=WAIT_SLICE, service=self.service)
                break
            except TimeoutError:
                self.check()
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"run {run_id} not done after {WAIT_TIMEOUT:g} s; worker log:\n"
                        + tail(self.worker_log)
                    ) from None
        if status.state != self._succeeded:
            raise BenchError(
                f"run {run_id} ended {status.state.value}, not succeeded: {status.error}\n"
                + (status.run.error_traceback or "")
            )
        expected = STEPS if ten else 1
        states = [step.state for step in status.steps]
        if len(states) != expected or any(s != self._step_succeeded for s in states):
            raise BenchError(f"run {run_id}: steps ended {states}, expected {expected} succeeded")
        last = status.steps[-1].result
        if not (isinstance(last, dict) and last.get("ok") is True):
            raise BenchError(f"run {run_id}: unexpected result {last!r}")

    def check(self) -> None:
        if self.worker.poll() is not None:
            raise BenchError(
                f"gristmill worker exited with {self.worker.returncode}; its log:\n"
                + tail(self.worker_log)
            )

    def processes(self) -> tuple[int | None, list[int]]:
        # Worker processes (and the Celery worker) lead a process group of their own; the
        # notifications' sender beside them does not.
        workers = [pid for pid in children(self.worker.pid) if os.getpgid(pid) == pid]
        if self.service.settings.executor == "celery" and len(workers) == 1:
            # The supervisor's one child is the Celery worker; its pool processes run units.
            return workers[0], children(workers[0])
        return self.worker.pid, workers


def _postgres_create(*, synchronous: bool = True) -> str:
    import psycopg

    name = f"gristmill_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as conn:
        conn.execute(f"CREATE DATABASE {name}")
        if not synchronous:
            conn.execute(f"ALTER DATABASE {name} SET synchronous_commit = off")
    return POSTGRES_URL.rsplit("/", 1)[0] + f"/{name}"


def _postgres_drop(url: str) -> None:
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(_dsn(POSTGRES_URL), autocommit=True, connect_timeout=5) as conn:
        conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND pid <> pg_backend_pid()",
            [name],
        )
        conn.execute(f"DROP DATABASE IF EXISTS {name}")


def _dsn(url: str) -> str:
    return url.replace("postgres://", "postgresql://", 1)


def bench_gristmill(backend: str, counts: Counts) -> dict[str, Any]:
    """``gristmill worker --workers 2`` on a fresh SQLite file or PostgreSQL database."""
    data_dir = Path(tempfile.mkdtemp(prefix=f"gristmill-bench-{backend}-"))
    database_url = ""
    try:
        env = {
            "GRISTMILL_DATA_DIR": str(data_dir),
            "GRISTMILL_PIPELINES": str(PIPELINES),
            "GRISTMILL_WORKERS": str(WORKERS),
            # Only used when stopping: bounds the drain so that cleanup stays quick.
            "GRISTMILL_DRAIN_SECONDS": "5",
            "GRISTMILL_KILL_GRACE": "1",
        }
        if backend == "postgres-celery":
            env["GRISTMILL_EXECUTOR"] = "celery"
            env["GRISTMILL_BROKER_URL"] = CELERY_EXECUTOR_REDIS_URL
            _flush_redis(CELERY_EXECUTOR_REDIS_URL)
        if backend in ("postgres", "postgres-nosync", "postgres-celery"):
            database_url = _postgres_create(synchronous=backend != "postgres-nosync")
            env["GRISTMILL_DATABASE_URL"] = database_url
            log(f"{backend}: created database {database_url.rsplit('/', 1)[1]}")
        from django.db import connections

        from gristmill.app.service import Service
        from gristmill.settings import Settings

        # Migrated here, before the worker starts.
        service = Service.from_settings(Settings.from_env(env), migrate=True)
        try:
            worker_log = data_dir / "worker.log"
            worker = start(
                [sys.executable, "-m", "gristmill", "worker", "--workers", str(WORKERS)],
                clean_env(**env),
                worker_log,
            )
            strays: list[int] = []
            try:
                driver = GristmillDriver(service, worker, worker_log)
                figures = measure(backend, driver, counts)
                strays = children(worker.pid)
            finally:
                strays = strays or children(worker.pid)
                stopping = time.monotonic()
                stop(worker, grace=15, strays=strays)
                took = time.monotonic() - stopping
                if took > 5:
                    log(f"{backend}: the worker took {took:.0f} s to stop:\n{tail(worker_log, 10)}")
        finally:
            service.store.close()
            connections.close_all()
        if worker.returncode != 0:
            log(f"{backend}: worker exited with {worker.returncode}:\n{tail(worker_log, 10)}")
        return figures
    finally:
        if database_url:
            _postgres_drop(database_url)
            log(f"{backend}: dropped database {database_url.rsplit('/', 1)[1]}")
        if backend == "postgres-celery":
            _flush_redis(CELERY_EXECUTOR_REDIS_URL)
        shutil.rmtree(data_dir, ignore_errors=True)


def _flush_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.flushdb()
    finally:
        client.close()


# --- multiprocessing ------------------------------------------------------------------------


def mp_step(x: int) -> int:
    """The trivial step for the pool: one more than its argument."""
    return x + 1


class _MpChain:
    """A ten-step pipeline on a ``multiprocessing`` pool, Celery-chain style: each step is its
    own ``apply_async``, submitted from the previous step's callback (in the pool's result
    thread) with the previous result as argument. So every step pays one dispatch and one
    result trip through the pool's pipes and nothing else: the floor for per-step overhead."""

    def __init__(self, pool: Any, length: int):
        self.pool = pool
        self.left = length
        self.done = threading.Event()
        self.value: int | None = None
        self.error: BaseException | None = None
        self._send(0)

    def _send(self, x: int) -> None:
        self.pool.apply_async(mp_step, (x,), callback=self._on_result, error_callback=self._fail)

    def _on_result(self, value: int) -> None:
        self.left -= 1
        if self.left:
            try:
                self._send(value)
            except BaseException as error:
                self._fail(error)
        else:
            self.value = value
            self.done.set()

    def _fail(self, error: BaseException) -> None:
        self.error = error
        self.done.set()

    def get(self, timeout: float) -> int | None:
        if not self.done.wait(timeout):
            raise TimeoutError
        if self.error is not None:
            raise self.error
        return self.value


class MultiprocessingDriver(Driver):
    """``multiprocessing.get_context("fork").Pool(2)``: ``apply_async`` and ``.get()``."""

    def __init__(self, pool: Any):
        self.pool = pool

    def submit(self, ten: bool) -> tuple[Any, int]:
        if ten:
            return _MpChain(self.pool, STEPS), STEPS
        return self.pool.apply_async(mp_step, (0,)), 1

    def wait(self, handle: tuple[Any, int]) -> None:
        result, expected = handle
        try:
            value = result.get(WAIT_TIMEOUT)
        except TimeoutError:
            raise BenchError(f"a pool job was not done after {WAIT_TIMEOUT:g} s") from None
        if value != expected:
            raise BenchError(f"a pool job returned {value!r}, expected {expected}")

    def processes(self) -> tuple[int | None, list[int]]:
        return None, children(os.getpid())


def bench_multiprocessing(counts: Counts) -> dict[str, Any]:
    import multiprocessing

    with multiprocessing.get_context("fork").Pool(WORKERS) as pool:
        return measure("multiprocessing", MultiprocessingDriver(pool), counts)


# --- Celery ---------------------------------------------------------------------------------


class CeleryDriver(Driver):
    """``step.delay()`` / a ``chain`` of ten, and ``AsyncResult.get()``, on Redis."""

    def __init__(self, worker: subprocess.Popen[bytes], worker_log: Path):
        from celery import chain
        from celery.exceptions import TimeoutError as CeleryTimeout

        from bench.celery_app import step

        self.worker = worker
        self.worker_log = worker_log
        self._chain = chain
        self._timeout_error = CeleryTimeout
        self._step = step

    def submit(self, ten: bool) -> tuple[Any, int]:
        if ten:
            signatures = [self._step.s(0), *(self._step.s() for _ in range(STEPS - 1))]
            return self._chain(*signatures).apply_async(), STEPS
        return self._step.delay(0), 1

    def wait(self, handle: tuple[Any, int]) -> None:
        result, expected = handle
        deadline = time.monotonic() + WAIT_TIMEOUT
        while True:
            try:
                value = result.get(timeout=WAIT_SLICE)
                break
            except self._timeout_error:
                self.check()
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"task {result.id} not done after {WAIT_TIMEOUT:g} s; worker log:\n"
                        + tail(self.worker_log)
                    ) from None
        if value != expected:
            raise BenchError(f"task {result.id} returned {value!r}, expected {expected}")

    def check(self) -> None:
        if self.worker.poll() is not None:
            raise BenchError(
                f"celery worker exited with {self.worker.returncode}; its log:\n"
                + tail(self.worker_log)
            )

    def processes(self) -> tuple[int | None, list[int]]:
        return self.worker.pid, children(self.worker.pid)


def _wait_for_ping(driver: CeleryDriver, timeout: float = 60) -> None:
    from celery.exceptions import TimeoutError as CeleryTimeout

    from bench.celery_app import ping

    deadline = time.monotonic() + timeout
    result = ping.delay()
    while True:
        try:
            if result.get(timeout=0.5) == "pong":
                return
        except CeleryTimeout:
            pass
        driver.check()
        if time.monotonic() > deadline:
            raise BenchError(f"celery worker did not answer within {timeout:g} s")


def bench_celery(counts: Counts) -> dict[str, Any]:
    """``celery worker --concurrency 2 --pool prefork`` on Redis."""
    from bench import celery_app

    celery_app.flush()
    scratch = Path(tempfile.mkdtemp(prefix="gristmill-bench-celery-"))
    worker_log = scratch / "celery.log"
    pythonpath = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    try:
        worker = start(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.celery_app",
                "worker",
                "--concurrency",
                str(WORKERS),
                "--pool",
                "prefork",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
                "-Q",
                celery_app.QUEUE,
                "--loglevel",
                "WARNING",
                "-n",
                f"bench-{uuid.uuid4().hex[:6]}@%h",
            ],
            clean_env(PYTHONPATH=pythonpath),
            worker_log,
        )
        try:
            driver = CeleryDriver(worker, worker_log)
            _wait_for_ping(driver)
            return measure("celery", driver, counts)
        finally:
            stop(worker, grace=15)
            celery_app.app.close()
            celery_app.flush()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- child: one system ----------------------------------------------------------------------


def _on_sigterm(signum: int, frame: FrameType | None) -> None:
    """Turn SIGTERM into SystemExit, once, so that the finally blocks clean up undisturbed."""
    signal.signal(signum, signal.SIG_IGN)
    raise SystemExit(128 + signum)


def run_system(system: str, counts: Counts) -> dict[str, Any]:
    """Measure one system in this process (a child of the parent run)."""
    signal.signal(signal.SIGTERM, _on_sigterm)  # the finally blocks stop the workers
    os.environ.pop("DJANGO_SETTINGS_MODULE", None)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    started = time.perf_counter()
    if system in ("sqlite", "postgres", "postgres-nosync", "postgres-celery"):
        figures = bench_gristmill(system, counts)
    elif system == "multiprocessing":
        figures = bench_multiprocessing(counts)
    elif system == "celery":
        figures = bench_celery(counts)
    else:
        raise BenchError(f"unknown system {system!r}")
    figures["seconds"] = time.perf_counter() - started
    return figures


# --- parent: every system, the table and the targets ----------------------------------------


def run_child(system: str, quick: bool) -> dict[str, Any]:
    """Run ``system``'s measurements in a child process; its figures, or ``{"error": ...}``."""
    argv = [sys.executable, str(Path(__file__).resolve()), "--system", system, "--json"]
    if quick:
        argv.append("--quick")
    log(f"=== {LABELS[system]}")
    child = subprocess.Popen(argv, stdout=subprocess.PIPE, start_new_session=True)
    try:
        output, _ = child.communicate(timeout=CHILD_TIMEOUT)
    except BaseException:
        _stop_child(child)
        raise
    lines = [line for line in output.decode().splitlines() if line.startswith("{")]
    if child.returncode != 0 or not lines:
        return {"error": f"exited with {child.returncode} (see its output above)"}
    figures: dict[str, Any] = json.loads(lines[-1])
    return figures


def _stop_child(child: subprocess.Popen[bytes]) -> None:
    """Let the child stop its workers (SIGTERM runs its finally blocks), then kill the rest."""
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            child.wait(CHILD_CLEANUP)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(child.pid, signal.SIGKILL)
    child.wait()


@dataclass(frozen=True)
class Row:
    title: str
    key: str
    format: Callable[[Any], str]


def _num(digits: int) -> Callable[[Any], str]:
    return lambda value: f"{value:,.{digits}f}"


ROWS = (
    Row("throughput, 1-step jobs (jobs/s)", "throughput", _num(0)),
    Row("  of which submitting alone (jobs/s)", "submit_rate", _num(0)),
    Row("per step, 10-step runs in flight (ms)", "step_ms_in_flight", _num(2)),
    Row("per step, 10-step runs one at a time (ms)", "step_ms_sequential", _num(2)),
    Row("round trip p50 (ms)", "round_trip_p50_ms", _num(2)),
    Row("round trip p95 (ms)", "round_trip_p95_ms", _num(2)),
    Row("worker RSS max (MB)", "worker_rss_max_mb", _num(1)),
    Row("worker RSS each (MB)", "worker_rss_mb", lambda v: " ".join(f"{x:.1f}" for x in v)),
    Row("workers' parent RSS (MB)", "parent_rss_mb", _num(1)),
    Row("time for this column (s)", "seconds", _num(0)),
)


def table(results: dict[str, dict[str, Any]], systems: Sequence[str]) -> str:
    header = ["", *(LABELS[s] for s in systems)]
    body = []
    for row in ROWS:
        cells = [row.title]
        for system in systems:
            figures = results[system]
            if "error" in figures:
                cells.append("FAILED")
            elif figures.get(row.key) is None:
                cells.append("-")
            else:
                cells.append(row.format(figures[row.key]))
        body.append(cells)
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]

    def render(cells: Sequence[str]) -> str:
        first = cells[0].ljust(widths[0])
        rest = (cell.rjust(width) for cell, width in zip(cells[1:], widths[1:], strict=True))
        return "  ".join([first, *rest])

    rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
    return "\n".join([render(header), rule, *(render(cells) for cells in body)])


@dataclass
class Target:
    name: str
    actual: str
    ratio: float | None
    passed: bool | None


def _ratio_target(
    results: dict[str, dict[str, Any]],
    name: str,
    system: str,
    key: str,
    unit: str,
    test: Callable[[float], bool],
) -> Target:
    ours, theirs = results.get(system, {}), results.get("celery", {})
    if ours.get(key) is None or theirs.get(key) is None:
        return Target(name, "not measured", None, None)
    ratio = ours[key] / theirs[key]
    actual = f"{ratio:.2f}x  ({ours[key]:,.2f} vs Celery {theirs[key]:,.2f} {unit})"
    return Target(name, actual, ratio, test(ratio))


def targets(results: dict[str, dict[str, Any]]) -> list[Target]:
    checks = [
        _ratio_target(
            results,
            "SQLite throughput >= 3x Celery's",
            "sqlite",
            "throughput",
            "jobs/s",
            lambda r: r >= 3,
        ),
        _ratio_target(
            results,
            "SQLite per-step overhead (in flight) <= 1/3 of Celery's",
            "sqlite",
            "step_ms_in_flight",
            "ms",
            lambda r: r <= 1 / 3,
        ),
        _ratio_target(
            results,
            "SQLite round trip p50 < Celery's",
            "sqlite",
            "round_trip_p50_ms",
            "ms",
            lambda r: r < 1,
        ),
        _ratio_target(
            results,
            "PostgreSQL throughput >= Celery's",
            "postgres",
            "throughput",
            "jobs/s",
            lambda r: r >= 1,
        ),
        _ratio_target(
            results,
            "PostgreSQL round trip p50 <= Celery's",
            "postgres",
            "round_trip_p50_ms",
            "ms",
            lambda r: r <= 1,
        ),
    ]
    checks += [
        _ratio_target(
            results,
            "Celery executor (PG) throughput >= Celery's",
            "postgres-celery",
            "throughput",
            "jobs/s",
            lambda r: r >= 1,
        ),
        _ratio_target(
            results,
            "Celery executor (PG) round trip p50 <= Celery's",
            "postgres-celery",
            "round_trip_p50_ms",
            "ms",
            lambda r: r <= 1,
        ),
    ]
    for system in ("sqlite", "postgres"):
        name = f"{LABELS[system]} worker RSS <= 100 MB"
        rss = results.get(system, {}).get("worker_rss_max_mb")
        if rss is None:
            checks.append(Target(name, "not measured", None, None))
        else:
            checks.append(Target(name, f"{rss:.1f} MB (max of {WORKERS})", rss / 100, rss <= 100))
    return checks


def render_targets(checks: Sequence[Target]) -> str:
    width = max(len(check.name) for check in checks)
    lines = []
    for check in checks:
        verdict = "n/a " if check.passed is None else ("PASS" if check.passed else "MISS")
        lines.append(f"{verdict}  {check.name.ljust(width)}  {check.actual}")
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    load = os.getloadavg()
    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "loadavg_at_start": [round(x, 2) for x in load],
        "platform": platform.platform(),
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only",
        default=",".join(SYSTEMS),
        help=f"comma-separated systems to run (default: all of {','.join(SYSTEMS)})",
    )
    parser.add_argument("--quick", action="store_true", help="10x fewer jobs: a smoke run")
    parser.add_argument("--json-out", type=Path, help="also write the figures as JSON here")
    parser.add_argument("--system", choices=SYSTEMS, help=argparse.SUPPRESS)  # child mode
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    counts = Counts().scaled(10) if args.quick else Counts()
    if args.system:
        figures = run_system(args.system, counts)
        print(json.dumps(figures) if args.json else figures, flush=True)
        return 0

    signal.signal(signal.SIGTERM, _on_sigterm)  # stop the running child (and its workers)
    signal.signal(signal.SIGHUP, _on_sigterm)
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        print(f"unknown system(s) {unknown}; choose from {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    info = machine()
    log(f"counts {asdict(counts)}, {WORKERS} workers each; machine {info}")
    results = {system: run_child(system, args.quick) for system in systems}
    checks = targets(results)
    print()
    print(
        f"gristmill benchmarks, {WORKERS} workers each{' (--quick)' if args.quick else ''}; "
        f"{info['cpus']} CPUs, load {info['loadavg_at_start']} at start"
    )
    print(
        f"jobs: throughput {counts.throughput}, in flight {counts.in_flight} x {STEPS} steps, "
        f"one at a time {counts.sequential} x {STEPS} steps, round trip {counts.round_trip}"
    )
    print()
    print(table(results, systems))
    print()
    print("targets (ratios from this run):")
    print(render_targets(checks))
    for system in systems:
        if "error" in results[system]:
            print(f"{LABELS[system]}: {results[system]['error']}")
    if args.json_out:
        document = {
            "quick": args.quick,
            "counts": asdict(counts),
            "workers": WORKERS,
            "machine": info,
            "results": results,
            "targets": [asdict(check) for check in checks],
        }
        args.json_out.write_text(json.dumps(document, indent=2) + "\n")
    return 1 if any("error" in results[s] for s in systems) else 0


if __name__ == "__main__":
    sys.exit(main())
