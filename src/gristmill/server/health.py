"""The health check, for load balancers and monitors: can this server do its job?

It cannot while the database is unreachable, nor, for ``gristmill serve`` with local workers,
once their supervisor has stopped (submissions would be accepted and never run). Either answers
503 with what is wrong. Beside that, it lists every supervisor of workers that uses the
database, from the heartbeats they write (every third of a lease), so that a monitor can see
workers elsewhere (``gristmill worker``) stop beating. With the Celery executor it also
connects to the broker: while the broker is down, submissions are kept but no unit is sent to a
worker, so that answers 503 as well.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from django.db import DatabaseError
from django.http import HttpRequest, JsonResponse

from gristmill.app.service import default_service
from gristmill.engine.outage import describe

_local_workers: Callable[[], bool] | None = None


def watch_local_workers(is_alive: Callable[[], bool] | None) -> None:
    """Make the health check depend on this process's local workers: ``is_alive`` says whether
    their supervisor is still running (``None``: no local workers)."""
    global _local_workers
    _local_workers = is_alive


def _supervisors() -> list[dict[str, Any]]:
    from gristmill.server.models import Supervisor

    now = time.time()
    lease = default_service().settings.lease_seconds
    return [
        {
            "name": row.name,
            "workers": row.workers,
            "alive": now - row.beat_at < lease,
            "seconds_since_beat": round(max(0.0, now - row.beat_at), 1),
        }
        for row in Supervisor.objects.order_by("name")
    ]


def healthz(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "ok", ...}`` when the database answers and the local workers (if any)
    are running; otherwise 503 with ``status`` ``unavailable`` and the ``problems`` found.

    ``database`` is ``ok`` or ``unavailable`` (with the Celery executor, ``broker`` too);
    ``workers`` is ``ok``, ``stopped``, or ``none``
    when this process runs no workers (they run elsewhere, as ``gristmill worker``);
    ``supervisors`` lists the supervisors of workers that beat recently or stopped beating
    (``alive`` false) within the last hour, when the database answers.
    """
    problems: list[str] = []
    body: dict[str, Any] = {"status": "ok", "database": "ok", "workers": "none"}
    try:
        body["supervisors"] = _supervisors()
    except DatabaseError as error:
        body["database"] = "unavailable"
        problems.append(f"the database is unavailable: {describe(error)}")
    bell = default_service().store.bell
    check = getattr(bell, "check", None)
    if check is not None:
        try:
            check()
            body["broker"] = "ok"
        except Exception as error:
            body["broker"] = "unavailable"
            problems.append(f"the broker is unavailable: {describe(error)}")
    if _local_workers is not None:
        body["workers"] = "ok" if _local_workers() else "stopped"
        if body["workers"] == "stopped":
            problems.append("the workers' supervisor has stopped: queued runs will not start")
    if problems:
        body.update(status="unavailable", problems=problems)
    return JsonResponse(body, status=503 if problems else 200)
