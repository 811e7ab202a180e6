"""``gristmill serve``: the web server and the local workers in one command."""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import click

from gristmill.app.service import Service
from gristmill.authoring.registry import Registry
from gristmill.cli.options import build_settings, settings_options
from gristmill.settings import Settings


def _supervise(settings: Settings, registry: Registry) -> None:
    from gristmill.executors.local import Supervisor

    def make_service() -> Service:
        return Service.from_settings(settings, registry=registry, migrate=False)

    queues = list(settings.queues) if settings.queues else None
    # With the Celery executor, no local workers: the supervisor only runs the reconciler and
    # the prune (Celery workers run the units, started by `gristmill worker`).
    workers = 0 if settings.executor == "celery" else settings.workers
    Supervisor(make_service, make_service(), workers=workers, queues=queues).run()


def _server(settings: Settings, application: Any, host: str, port: int, workers: int) -> Any:
    import uvicorn

    from gristmill.server.protocol import protocol

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            if self.servers and self.servers[0].sockets:
                bound_host, bound_port = self.servers[0].sockets[0].getsockname()[:2]
                shown = f"[{bound_host}]" if ":" in bound_host else bound_host
                click.echo(
                    f"gristmill serving http://{shown}:{bound_port}/ "
                    f"({workers} worker(s), data in {settings.data_dir})"
                )
                sys.stdout.flush()

    json_logs = {"log_config": None} if settings.log_format == "json" else {}
    config = uvicorn.Config(
        application,
        http=protocol(settings.read_timeout),
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        access_log=False,
        server_header=False,
        # With JSON logs, uvicorn's records go through the JSON handler like the others.
        **json_logs,  # type: ignore[arg-type]
    )
    return Server(config)


@click.command()
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (loopback unless you mean to expose it).",
)
@click.option(
    "--port",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="Port to listen on; 0 picks a free one (printed at start).",
)
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=0),
    help="Local worker processes; 0 runs none (workers elsewhere) "
    "[env: GRISTMILL_WORKERS; default: CPU count]",
)
@settings_options
def serve(
    host: str,
    port: int,
    workers: int | None,
    data_dir: Path | None,
    database_url: str | None,
    pipelines: tuple[str, ...],
) -> None:
    """Run the web server and local workers until Ctrl-C or SIGTERM.

    SQLite databases are created and migrated on first start; a PostgreSQL database needs
    `gristmill migrate` once. With no pipelines configured, the demo pipelines are offered.
    """
    settings = build_settings(data_dir, database_url, pipelines)
    worker_count = settings.workers if workers is None else workers
    if settings.executor == "celery":
        worker_count = 0  # Celery workers run the units (`gristmill worker`)
    if worker_count:
        settings = replace(settings, workers=worker_count)
    service = Service.from_settings(settings)
    service.require_shared_store("gristmill serve's web server and workers")
    supervisor = None
    if worker_count or settings.executor == "celery":
        from django.db import connections

        connections.close_all()  # never fork with open connections
        # Fork the supervisor before the server starts any thread.
        supervisor = multiprocessing.get_context("fork").Process(
            target=_supervise, args=(settings, service.registry), name="gristmill-supervisor"
        )
        supervisor.start()
    from gristmill.server.asgi import application
    from gristmill.server.health import watch_local_workers
    from gristmill.server.notifier import start_thread

    if supervisor is not None and worker_count:
        watch_local_workers(supervisor.is_alive)
    _, stop_notifier = start_thread(service)  # e-mails and webhooks of ended runs

    # uvicorn stops gracefully on SIGINT/SIGTERM and then re-raises the signal to the handlers
    # that were in place before it: ours, which just note it, so that the workers are drained
    # below and the command exits 0, as `gristmill worker` does.
    for stop in (signal.SIGINT, signal.SIGTERM):
        signal.signal(stop, lambda signum, frame: None)
    try:
        _server(settings, application, host, port, worker_count).run()
    finally:
        stop_notifier.set()
        if supervisor is not None and supervisor.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(supervisor.pid, signal.SIGTERM)
            supervisor.join(settings.drain_seconds + settings.kill_grace + 10)
            if supervisor.is_alive():
                supervisor.kill()
                supervisor.join()
