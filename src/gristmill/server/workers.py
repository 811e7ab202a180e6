"""Run gristmill's workers in this process until SIGTERM or Ctrl-C: what ``gristmill worker``
and a Django site's ``manage.py gristmill_worker`` both do."""

from __future__ import annotations

import logging
from collections.abc import Callable

from gristmill.app.service import Service
from gristmill.server.conf import describe_database
from gristmill.settings import Settings

logger = logging.getLogger("gristmill.cli")


def run_workers(settings: Settings, announce: Callable[[str], None] | None = None) -> None:
    """Start ``settings.workers`` worker processes on ``settings.queues`` (local ones, or a
    Celery worker with ``GRISTMILL_EXECUTOR=celery``) and, beside them, the process that sends
    the notifications of ended runs; return once they have stopped. ``announce`` is given the
    line that says what started (default: logged).

    Raises :class:`~gristmill.errors.ConfigurationError` for settings or a database that
    cannot be used."""
    from gristmill.executors.local import Supervisor

    service = Service.from_settings(settings)  # which sets Django up, before the models load
    from gristmill.server.notifier import start_process

    registry = service.registry

    def make_service() -> Service:
        return Service.from_settings(settings, registry=registry, migrate=False)

    celery = settings.executor == "celery"
    banner = (
        f"gristmill: {settings.workers} {'Celery ' if celery else ''}worker(s) on "
        f"{describe_database(settings.database_url)}, "
        f"pipelines: {', '.join(p.name for p in registry)}"
    )
    if announce is None:
        logger.info("%s", banner)
    else:
        announce(banner)
    # The e-mails and webhooks of ended runs are sent by a process beside the workers, with
    # either executor. It is forked: it must not share our connections.
    service.store.before_fork()
    notifier = start_process(make_service)
    try:
        if celery:
            from gristmill.executors.celery import supervise

            service.store.close()
            supervise(settings, registry)
            return
        Supervisor(
            make_service,
            service,
            workers=settings.workers,
            queues=list(settings.queues) if settings.queues else None,
        ).run()
    finally:
        notifier.terminate()
        notifier.join(10)
        if notifier.is_alive():
            notifier.kill()
            notifier.join()
