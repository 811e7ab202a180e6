"""Prometheus metrics at ``/metrics``, in the text exposition format (``prometheus_client``).

Every figure is read from the database at scrape time with a few aggregate queries, so that it
is the same whichever web process answers and however many there are (no per-process
counters). Step durations are a histogram over the latest :data:`RECENT_STEPS` steps that
ended: a bounded window rather than counters since the start, so read it with
``histogram_quantile`` as it is, not through ``rate()``.

The page is for scrapers and staff only: a request with ``Authorization: Bearer`` and the
value of ``GRISTMILL_METRICS_TOKEN``, or a staff member's session. Anybody else gets 404, as if
there were no such page.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Iterator

from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.registry import Collector

from gristmill.app.service import default_service
from gristmill.states import RunState

RECENT_STEPS = 10_000
"""How many of the latest ended steps the duration histogram covers."""

DURATION_BUCKETS = (0.1, 0.5, 1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0)
"""Upper bounds, in seconds, of the duration histogram's buckets (and ``+Inf``)."""


def may_scrape(request: HttpRequest) -> bool:
    """Whether the request may read the metrics: the metrics token, or a staff session."""
    token = default_service().settings.metrics_token
    header = request.headers.get("Authorization", "")
    scheme, _, given = header.partition(" ")
    if token and scheme.lower() == "bearer" and hmac.compare_digest(given.strip(), token):
        return True
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_authenticated and user.is_staff)


def queues() -> list[tuple[str, int, float]]:
    """``(queue, units waiting, seconds the oldest has waited)`` per queue with work waiting,
    by queue name. A unit waits from its run's submission (a retried unit: from then too)."""
    from gristmill.server.models import WorkUnit

    now = time.time()
    rows = (
        WorkUnit.objects.filter(state="queued")
        .values("queue")
        .annotate(waiting=Count("id"), oldest=Min("run__created_at"))
        .order_by("queue")
    )
    return [
        (
            row["queue"],
            row["waiting"],
            max(0.0, now - row["oldest"].timestamp()) if row["oldest"] is not None else 0.0,
        )
        for row in rows
    ]


def recent_durations(limit: int = RECENT_STEPS) -> list[float]:
    """The durations in seconds of the latest ``limit`` steps that ended."""
    from gristmill.server.models import Step

    rows = (
        Step.objects.filter(started_at__isnull=False, finished_at__isnull=False)
        .order_by("-id")
        .values_list("started_at", "finished_at")[:limit]
    )
    return [
        max(0.0, finished - started)
        for started, finished in rows
        if started is not None and finished is not None
    ]


def bucket_counts(values: list[float], bounds: tuple[float, ...]) -> list[int]:
    """Cumulative counts of ``values`` at or under each bound, then the total (``+Inf``)."""
    return [sum(1 for v in values if v <= bound) for bound in bounds] + [len(values)]


class DatabaseCollector(Collector):
    """Collects gristmill's metrics from the database, once per scrape."""

    def collect(self) -> Iterator[GaugeMetricFamily | HistogramMetricFamily]:
        from gristmill.server.models import Run, Supervisor

        # One scan of the runs for both families: by state, and whether expired ones are wiped.
        counted: dict[str, int] = {}
        wiped: dict[bool, int] = {}
        for state, gone, n in (
            Run.objects.values_list("state", "wiped").annotate(n=Count("*")).order_by()
        ):
            counted[state] = counted.get(state, 0) + n
            if state == RunState.EXPIRED:
                wiped[bool(gone)] = wiped.get(bool(gone), 0) + n
        runs = GaugeMetricFamily("gristmill_runs", "Runs by state.", labels=["state"])
        for state in RunState:
            runs.add_metric([state.value], counted.get(state.value, 0))
        yield runs

        expired = GaugeMetricFamily(
            "gristmill_expired_runs",
            "Runs expired by retention or deletion (the pruner's work), by whether their files "
            "are removed yet.",
            labels=["files"],
        )
        expired.add_metric(["removed"], wiped.get(True, 0))
        expired.add_metric(["pending"], wiped.get(False, 0))
        yield expired

        depth = GaugeMetricFamily(
            "gristmill_queue_depth", "Units of work waiting for a worker.", labels=["queue"]
        )
        age = GaugeMetricFamily(
            "gristmill_queue_oldest_age_seconds",
            "How long the oldest unit waiting has waited.",
            labels=["queue"],
        )
        for queue, waiting, oldest in queues():
            depth.add_metric([queue], waiting)
            age.add_metric([queue], oldest)
        yield depth
        yield age

        now = time.time()
        lease = default_service().settings.lease_seconds
        alive = GaugeMetricFamily(
            "gristmill_supervisor_up",
            "1 if the supervisor beat within a lease, else 0.",
            labels=["supervisor"],
        )
        beat = GaugeMetricFamily(
            "gristmill_supervisor_beat_age_seconds",
            "Seconds since the supervisor's last heartbeat.",
            labels=["supervisor"],
        )
        workers = GaugeMetricFamily(
            "gristmill_supervisor_workers",
            "Live worker processes of the supervisor at its last beat.",
            labels=["supervisor"],
        )
        live_workers = 0
        for row in Supervisor.objects.order_by("name"):
            up = now - row.beat_at < lease
            alive.add_metric([row.name], 1 if up else 0)
            beat.add_metric([row.name], max(0.0, now - row.beat_at))
            workers.add_metric([row.name], row.workers)
            live_workers += row.workers if up else 0
        yield alive
        yield beat
        yield workers
        yield GaugeMetricFamily(
            "gristmill_workers", "Live worker processes of supervisors alive.", value=live_workers
        )

        durations = recent_durations()
        counts = bucket_counts(durations, DURATION_BUCKETS)
        bounds = [*(f"{b:g}" for b in DURATION_BUCKETS), "+Inf"]
        yield HistogramMetricFamily(
            "gristmill_step_duration_seconds",
            f"Durations of the latest {RECENT_STEPS} steps that ended.",
            buckets=list(zip(bounds, counts, strict=True)),
            sum_value=sum(durations),
        )


def metrics(request: HttpRequest) -> HttpResponse:
    """The metrics, for a scraper with the token or for staff; 404 for anybody else."""
    if not may_scrape(request):
        raise Http404("no such page")
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DatabaseCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)
