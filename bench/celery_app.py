"""The Celery side of the comparison: one trivial task on Redis, JSON only.

Broker and result backend are the same Redis database (``BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/15``, a database number chosen to stay clear of anything else on the
server); :func:`flush` empties it before a measurement. Settings are Celery's defaults otherwise
(prefetch multiplier 4, early acknowledgement), as a typical deployment runs it.

Worker: ``celery -A bench.celery_app worker --concurrency 2 --pool prefork -Q gristmill-bench``.
"""

from __future__ import annotations

import os
from typing import Any

from celery import Celery

REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
QUEUE = "gristmill-bench"

app = Celery("gristmill_bench", broker=REDIS_URL, backend=REDIS_URL)
app.conf.update(
    task_serializer="json",
    result_serializer="json",
    accept_content=["json"],
    result_accept_content=["json"],
    task_default_queue=QUEUE,
    result_expires=3600,
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    timezone="UTC",
)


@app.task(name="bench.step")
def step(x: int) -> int:
    """The trivial step: one more than its argument."""
    return x + 1


@app.task(name="bench.ping")
def ping() -> str:
    """Answered once the worker is up."""
    return "pong"


def flush() -> None:
    """Empty the benchmark's Redis database (queues and results of earlier runs)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        client.flushdb()
    finally:
        client.close()


@app.task(name="bench.map_batch")
def map_batch(path: str, start: int, end: int) -> list[Any]:
    """One batch of ``bench/map_items.py``'s chord: the items of a byte range checked, their
    findings returned (and so stored in the result backend)."""
    from bench.map_items import floor_batch

    return floor_batch((path, start, end))


@app.task(name="bench.map_reduce")
def map_reduce(batches: list[list[Any]]) -> dict[str, Any]:
    """The chord's body: counts by kind and 5 random examples per kind."""
    from gristmill import Reservoir

    examples = Reservoir(k=5, seed=1)
    counts: dict[str, int] = {}
    for found in batches:
        for _, finding in found:
            counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
            examples.add(finding["kind"], finding)
    return {"counts": counts, "examples": examples.as_dict()}
