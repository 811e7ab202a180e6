"""The Dramatiq side of the W1 comparison: one trivial actor on Redis, with results.

Broker and result backend share one Redis database (``BENCH_DRAMATIQ_REDIS_URL``, default
``redis://127.0.0.1:6379/14``, clear of Celery's 15); :func:`flush` empties it. Dramatiq's
defaults otherwise (JSON messages, 8 threads per worker process).

Worker: ``dramatiq bench.dramatiq_app --processes 2 --queues gristmill-bench``.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.results import Results
from dramatiq.results.backends.redis import RedisBackend

REDIS_URL = os.environ.get("BENCH_DRAMATIQ_REDIS_URL", "redis://127.0.0.1:6379/14")
QUEUE = "gristmill-bench"

broker = RedisBroker(url=REDIS_URL)
backend = RedisBackend(url=REDIS_URL)
broker.add_middleware(Results(backend=backend))
dramatiq.set_broker(broker)


@dramatiq.actor(queue_name=QUEUE, store_results=True, max_retries=0)
def step(x: int) -> int:
    """The trivial step: one more than its argument."""
    return x + 1


def flush() -> None:
    """Empty the benchmark's Redis database."""
    broker.client.flushdb()


@dramatiq.actor(queue_name=QUEUE, store_results=True, max_retries=0)
def map_batch(path: str, start: int, end: int) -> list[Any]:
    """One batch of ``bench/map_items.py``'s group: the items of a byte range checked, their
    findings returned (and so stored in the result backend)."""
    from bench.map_items import floor_batch

    return floor_batch((path, start, end))
