"""How long a PostgreSQL restart holds up work: from the database coming back to the first
queued run starting.

One ``gristmill worker`` (one worker process) on a private PostgreSQL cluster (initdb into a
temporary directory, a free port; never the shared server). Each repetition: a ``bench-gate``
run holds the worker and a ``bench-1`` run waits in the queue behind it; the cluster is stopped
(``pg_ctl stop -m fast``, as a restart does), the gate opens so that its step ends while the
database is down, and ``--outage`` seconds later the cluster starts again. From the moment it
accepts connections, the script times the gate run's result being saved and the queued run
starting (both read from the database), and prints p50 and max.

    .venv/bin/python bench/db_outage.py                  # 5 repetitions, 3 s outages, ~30 s
    .venv/bin/python bench/db_outage.py --repeat 3 --outage 10

Needs the ``postgres`` extra and PostgreSQL's server programs (``initdb``, ``pg_ctl``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent))  # the private cluster helper is shared with the tests

from tests.private_postgres import postgres_bindir, private_cluster  # noqa: E402

PIPELINES = BENCH / "pipelines.py"
LEASE = 10.0


def _until(condition: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up waiting for {what} after {timeout:g} s")
        time.sleep(0.002)


def _started_at(service: Any, run_id: str) -> float | None:
    from gristmill.errors import StoreUnavailableError

    try:
        started = service.store.get_run(run_id).started_at
    except StoreUnavailableError:
        return None
    return None if started is None else float(started.timestamp())


def _finished_at(service: Any, run_id: str) -> float | None:
    from gristmill.errors import StoreUnavailableError

    try:
        run = service.store.get_run(run_id)
    except StoreUnavailableError:
        return None
    ended = run.finished_at
    return None if ended is None or not run.state.is_terminal else float(ended.timestamp())


def measure(repeat: int, outage: float, cluster: Any, data_dir: Path) -> list[tuple[float, float]]:
    from gristmill.app.service import Service
    from gristmill.app.submission import submit, wait
    from gristmill.settings import Settings

    settings = Settings.from_env(
        {},
        data_dir=data_dir,
        database_url=cluster.url,
        pipelines=(str(PIPELINES),),
        lease_seconds=LEASE,
        workers=1,
    )
    service = Service.from_settings(settings, migrate=True)
    log = (data_dir / "worker.log").open("wb")
    worker = subprocess.Popen(
        [sys.executable, "-m", "gristmill", "worker"],
        env={**settings.to_env(), "PATH": "/usr/bin:/bin"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    figures = []
    try:
        wait(submit("bench-1", service=service), timeout=60, service=service)  # warm up
        for round_ in range(repeat):
            gate = data_dir / f"gate-{round_}"
            held = submit("bench-gate", params={"gate": str(gate)}, service=service)
            queued = submit("bench-1", service=service)
            _until(gate.with_name(gate.name + ".waiting").exists, 60, "the gate run to start")
            cluster.stop("fast")
            gate.touch()
            time.sleep(outage)  # the outage itself
            cluster.start()
            back = time.time()
            saved = _until(partial(_finished_at, service, held), 60, "the gate run's result")
            started = _until(partial(_started_at, service, queued), 60, "the queued run")
            wait(queued, timeout=60, service=service)
            figures.append((saved - back, started - back))
    finally:
        worker.terminate()
        worker.wait(60)
        log.close()
        service.store.close()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="outages to measure (default 5)")
    parser.add_argument(
        "--outage", type=float, default=3.0, help="seconds the database is down (default 3)"
    )
    options = parser.parse_args()
    bindir = postgres_bindir()
    if bindir is None:
        raise SystemExit("PostgreSQL's server programs (initdb, pg_ctl) are not installed")
    with (
        tempfile.TemporaryDirectory(prefix="gristmill-bench-") as data,
        private_cluster(bindir) as cluster,
    ):
        figures = measure(options.repeat, options.outage, cluster, Path(data))
    saved = [s for s, _ in figures]
    started = [s for _, s in figures]
    print(f"PostgreSQL restart, {options.outage:g} s down, {len(figures)} times, 1 worker:")
    for label, values in (
        ("database back -> result of the step cut off saved", saved),
        ("database back -> first queued run started", started),
    ):
        print(
            f"  {label}: p50 {statistics.median(values):.2f} s, max {max(values):.2f} s "
            f"({', '.join(f'{v:.2f}' for v in values)})"
        )


if __name__ == "__main__":
    main()
