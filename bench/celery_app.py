"""The Celery side of the comparison: one trivial task on Redis, JSON only.

Broker and result backend are the same Redis database (``BENCH_REDIS_URL``, default
``redis://127.0.0.1:6379/15``, a database number chosen to stay clear of anything else on the
server); :func:`flush` empties it before a measurement. Settings are Celery's defaults otherwise
(prefetch multiplier 4, early acknowledgement), as a typical deployment runs it.

Worker: ``celery -A bench.celery_app worker --concurrency 2 --pool prefork -Q gristmill-bench``.
"""

from __future__ import annotations

import os

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
