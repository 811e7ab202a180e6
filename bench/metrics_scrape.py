"""What a Prometheus scrape of ``/metrics`` costs the server, beside the health check's
(``/healthz``, which monitors already call as often), on a SQLite database of many runs.

    python bench/metrics_scrape.py [--runs 100000] [--repeat 20]

The database is filled directly (a run, a step and, for one run in a hundred, a queued unit
per run), then both views are called in this process through Django's request factory, and
the median time of each is printed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

STATES = ("succeeded", "succeeded", "succeeded", "failed", "cancelled", "expired")


def fill(runs: int) -> None:
    from gristmill.server.models import Run, Step, WorkUnit

    now = datetime.now(UTC)
    for start in range(0, runs, 5000):
        batch = []
        for i in range(start, min(runs, start + 5000)):
            created = now - timedelta(seconds=30 * (runs - i))
            state = "queued" if i % 100 == 0 else STATES[i % len(STATES)]
            batch.append(
                Run(
                    id=uuid.uuid4(),
                    pipeline="bench",
                    state=state,
                    created_at=created,
                    expires_at=created + timedelta(days=7),
                    wiped=state == "expired",
                )
            )
        Run.objects.bulk_create(batch)
        steps, units = [], []
        for run in batch:
            begun = run.created_at.timestamp()
            steps.append(
                Step(
                    run=run,
                    name="one",
                    position=0,
                    state="succeeded",
                    attempt=1,
                    started_at=begun,
                    finished_at=begun + (hash(run.id) % 600) / 10,
                )
            )
            if run.state == "queued":
                units.append(WorkUnit(run=run, queue="default", state="queued"))
        Step.objects.bulk_create(steps)
        WorkUnit.objects.bulk_create(units)


def median_ms(call: object, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        response = call()  # type: ignore[operator]
        times.append((time.perf_counter() - began) * 1000)
        assert response.status_code == 200, response.content
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()

    from gristmill.server.conf import setup
    from gristmill.settings import Settings

    with tempfile.TemporaryDirectory() as data_dir:
        settings = Settings.from_env({"GRISTMILL_DATA_DIR": data_dir}, metrics_token="bench")
        setup(settings, migrate=True)
        from django.test import RequestFactory

        from gristmill.app.service import Service, set_default_service
        from gristmill.server.health import healthz
        from gristmill.server.metrics import metrics

        set_default_service(Service.from_settings(settings))
        began = time.perf_counter()
        fill(args.runs)
        print(f"filled {args.runs:,} runs in {time.perf_counter() - began:.1f} s")
        factory = RequestFactory()
        scrape = factory.get("/metrics", HTTP_AUTHORIZATION="Bearer bench")
        health = factory.get("/healthz")
        metrics_ms = median_ms(lambda: metrics(scrape), args.repeat)
        health_ms = median_ms(lambda: healthz(health), args.repeat)
        print(f"{'view':<12} {'median ms':>10}  ({args.runs:,} runs, SQLite)")
        print(f"{'/metrics':<12} {metrics_ms:>10.1f}")
        print(f"{'/healthz':<12} {health_ms:>10.1f}  (baseline)")


if __name__ == "__main__":
    main()
