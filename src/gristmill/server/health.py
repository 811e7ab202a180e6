"""The health check, for load balancers and monitors: can this server do its job?

It cannot while the database is unreachable, nor, for ``gristmill serve`` with local workers,
once their supervisor has stopped (submissions would be accepted and never run). Either answers
503 with what is wrong.
"""

from __future__ import annotations

from collections.abc import Callable

from django.db import DatabaseError, connection
from django.http import HttpRequest, JsonResponse

from gristmill.engine.outage import describe

_local_workers: Callable[[], bool] | None = None


def watch_local_workers(is_alive: Callable[[], bool] | None) -> None:
    """Make the health check depend on this process's local workers: ``is_alive`` says whether
    their supervisor is still running (``None``: no local workers)."""
    global _local_workers
    _local_workers = is_alive


def healthz(request: HttpRequest) -> JsonResponse:
    """200 ``{"status": "ok", ...}`` when the database answers and the local workers (if any)
    are running; otherwise 503 with ``status`` ``unavailable`` and the ``problems`` found.

    ``database`` is ``ok`` or ``unavailable``; ``workers`` is ``ok``, ``stopped``, or ``none``
    when this process runs no workers (they run elsewhere, as ``gristmill worker``).
    """
    problems: list[str] = []
    database = "ok"
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as error:
        database = "unavailable"
        problems.append(f"the database is unavailable: {describe(error)}")
    workers = "none"
    if _local_workers is not None:
        workers = "ok" if _local_workers() else "stopped"
        if workers == "stopped":
            problems.append("the workers' supervisor has stopped: queued runs will not start")
    body: dict[str, object] = {
        "status": "unavailable" if problems else "ok",
        "database": database,
        "workers": workers,
    }
    if problems:
        body["problems"] = problems
    return JsonResponse(body, status=503 if problems else 200)
