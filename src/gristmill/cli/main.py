"""``gristmill``: run pipelines locally, start workers, set up the database."""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape

from gristmill.app.service import Service
from gristmill.app.submission import RunStatus, get_run
from gristmill.authoring.registry import YAML_SUFFIXES, Registry, load_spec
from gristmill.cli.display import ConsoleLogHandler, map_lines, run_display
from gristmill.cli.options import build_settings, param_option, parse_params, settings_options
from gristmill.errors import (
    ConfigurationError,
    GristmillError,
    PipelineFileError,
    SubmissionError,
)
from gristmill.logfields import JsonFormatter
from gristmill.settings import Settings
from gristmill.states import RunState
from gristmill.store.records import MapStatus

console = Console(stderr=True, soft_wrap=True)


def _fail(message: str, code: int = 1) -> NoReturn:
    console.print(f"[bold red]error:[/] {message}", highlight=False)
    sys.exit(code)


def _service(settings: Settings, registry: Registry | None = None) -> Service:
    return Service.from_settings(settings, registry=registry)


class _Group(click.Group):
    """Shows gristmill's own errors (bad settings, broken pipeline files, an unreachable or
    unmigrated database) as one ``error:`` line and exit status 2, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except PipelineFileError as error:  # one line per mistake of a YAML pipeline file
            for problem in error.problems[:-1]:
                console.print(f"[bold red]error:[/] {escape(problem)}", highlight=False)
            _fail(escape(error.problems[-1]), 2)
        except GristmillError as error:
            _fail(str(error), 2)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="gristmill")
def main() -> None:
    """gristmill: a server for data-processing pipelines."""
    if os.environ.get("GRISTMILL_LOG_FORMAT", "").strip().lower() == "json":
        # One JSON object per line on stderr, for log collectors; workers forked by this
        # process inherit it.
        json_handler = logging.StreamHandler(sys.stderr)
        json_handler.setFormatter(JsonFormatter())
        logging.basicConfig(level=logging.INFO, handlers=[json_handler])
        return
    logging.basicConfig(
        level=logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
        handlers=[ConsoleLogHandler(console)],
    )


_FILE_SUFFIXES = (".py", *YAML_SUFFIXES)


def _resolve_pipeline(spec: str, settings: Settings) -> tuple[Registry, str]:
    """A pipeline named, or defined in a file (``file.py``, ``file.yaml``, ``file.py:name``)."""
    path, _, name = (
        spec.partition(":")
        if spec.count(":") == 1 and any(f"{suffix}:" in spec for suffix in _FILE_SUFFIXES)
        else (spec, "", "")
    )
    if path.lower().endswith(_FILE_SUFFIXES):
        pipelines = load_spec(path)
        if not name:
            if len(pipelines) > 1:
                names = ", ".join(p.name for p in pipelines)
                raise ConfigurationError(
                    f"{path} defines several pipelines ({names}); choose one with {path}:NAME"
                )
            name = pipelines[0].name
        return Registry(pipelines), name
    return Registry(specs=settings.pipelines), spec


def _map_summary(status: MapStatus) -> dict[str, Any]:
    """A map step's status in the shape of the API's (which :func:`map_lines` prints)."""
    return {
        "items_done": status.items_done,
        "items_total": status.items_total,
        "items_failed": status.items_failed,
        "batches": status.batches,
        "batches_total": status.batches_total,
        "counts": status.counts,
        "partial": not status.complete,
        "failed_batches": [
            {
                "number": batch.number,
                "first_item": batch.first_item,
                "items": batch.items,
                "error": batch.error,
                "failed_items_total": len(batch.failed_items),
            }
            for batch in status.failed_batches[:20]
        ],
        "failed_batches_total": len(status.failed_batches),
    }


def _print_result(status: RunStatus, service: Service) -> None:
    out = Console(soft_wrap=True)
    maps = {m.step: _map_summary(m) for m in service.store.map_status(status.id)}
    for step in status.steps:
        mark = {"succeeded": "[green]✔[/]", "skipped": "[dim]-[/]", "failed": "[red]✘[/]"}.get(
            step.state.value, "·"
        )
        duration = f" [dim]{step.duration:.2f}s[/]" if step.duration is not None else ""
        out.print(f"{mark} {step.name} [dim]{step.state.value}[/]{duration}", highlight=False)
        if step.result is not None and step.state.value == "succeeded":
            text = (
                repr(step.result)
                if not isinstance(step.result, dict)
                else ", ".join(f"{k}={v!r}" for k, v in list(step.result.items())[:8])
            )
            out.print(f"    {text[:300]}", highlight=False, markup=False)
        if step.name in maps:
            for line in map_lines(maps[step.name]):
                out.print(f"    {line}", highlight=False, markup=False)
        for output in step.outputs:
            where = service.storage.local_path(output.path)  # fetched, if kept remotely
            out.print(f"    output {output.name}: {where}", highlight=False)


@main.command()
@click.argument("pipeline")
@click.argument("inputs", nargs=-1, type=click.Path(exists=False, path_type=Path))
@param_option
@settings_options
def run(
    pipeline: str,
    inputs: tuple[Path, ...],
    params: tuple[str, ...],
    data_dir: Path | None,
    database_url: str | None,
    pipelines: tuple[str, ...],
) -> None:
    """Run PIPELINE on local INPUTS in this process, showing progress.

    PIPELINE is a configured pipeline's name, a .py file defining one pipeline, or FILE.py:NAME.
    Exits non-zero, with the run's message, if the run fails.
    """
    from gristmill.executors.inline import InlineExecutor

    settings = build_settings(data_dir, database_url, pipelines)
    registry, name = _resolve_pipeline(pipeline, settings)
    service = _service(settings, registry)
    executor = InlineExecutor(service)
    try:
        try:
            run_id, claim = executor.submit(name, list(inputs), parse_params(params))
        except SubmissionError as error:
            for field, messages in error.errors.items():
                for message in messages:
                    console.print(f"[bold red]error:[/] {field}: {message}", highlight=False)
            sys.exit(2)
        worker = threading.Thread(
            target=executor.run, args=(claim,), name="gristmill-inline", daemon=True
        )
        try:
            _watch(service, run_id, worker)
        except KeyboardInterrupt:
            executor.abandon(claim, "cancelled from the command line (Ctrl-C)")
            console.print(f"run {run_id} cancelled", highlight=False)
            sys.exit(130)
    finally:
        executor.close()
    status = get_run(run_id, service=service)
    _print_result(status, service)
    console.print(f"run {run_id} [bold]{status.state.value}[/]", highlight=False)
    if status.state != RunState.SUCCEEDED:
        _fail(status.error or status.state.value)


def _watch(service: Service, run_id: str, worker: threading.Thread) -> None:
    """Start ``worker`` (the run's thread) and show the run until it ends. The display is up
    before the thread starts, so that everything the run logs is printed above it (a record
    logged while the display was starting could join its first line)."""
    after = 0
    with run_display(console) as display:
        worker.start()
        while True:
            alive = worker.is_alive()
            run = service.store.get_run(run_id)
            for line in service.store.read_log(run_id, after=after):
                after = line.id
                display.log(line.step, line.text)
            display.update(
                run.state.value, run.current_step, run.stage, run.progress_done, run.progress_total
            )
            if not alive:
                return
            worker.join(0.1)


@main.command()
@click.option(
    "--workers",
    "-w",
    type=click.IntRange(min=1),
    help="Worker processes [env: GRISTMILL_WORKERS; default: CPU count]",
)
@click.option("--queue", "-Q", "queues", multiple=True, help="Take only from these queues.")
@settings_options
def worker(
    workers: int | None,
    queues: tuple[str, ...],
    data_dir: Path | None,
    database_url: str | None,
    pipelines: tuple[str, ...],
) -> None:
    """Start worker processes that run queued runs, until Ctrl-C or SIGTERM.

    With GRISTMILL_EXECUTOR=celery they are a Celery worker on GRISTMILL_BROKER_URL (queue q
    is the Celery queue gristmill.q); otherwise local worker processes."""
    from gristmill.server.workers import run_workers

    settings = build_settings(data_dir, database_url, pipelines, workers=workers)
    if queues:
        settings = replace(settings, queues=tuple(queues))

    def announce(banner: str) -> None:
        if settings.log_format == "json":  # a log collector reads standard error: a record
            logging.getLogger("gristmill.cli").info("%s", banner)
        else:
            console.print(banner, highlight=False)

    run_workers(settings, announce)


def _where(settings: Settings) -> str:
    from gristmill.server.conf import describe_database

    return describe_database(settings.database_url)


@main.command()
@settings_options
def migrate(data_dir: Path | None, database_url: str | None, pipelines: tuple[str, ...]) -> None:
    """Create or update gristmill's tables (needed once for PostgreSQL; automatic on SQLite)."""
    from gristmill.server.conf import setup

    settings = build_settings(data_dir, database_url, pipelines)
    setup(settings, migrate=True)
    console.print(f"database ready: {_where(settings)}", highlight=False)


@main.command()
@settings_options
def prune(data_dir: Path | None, database_url: str | None, pipelines: tuple[str, ...]) -> None:
    """Expire the ended runs whose retention period is over: remove their files, results and
    logs, keeping a small record that says when and why. Finishes removals a crash cut short.

    The workers' supervisor (gristmill worker, gristmill serve) does this every
    GRISTMILL_PRUNE_INTERVAL seconds; run it by hand or from cron where no workers run.
    """
    from gristmill.engine import retention

    service = _service(build_settings(data_dir, database_url, pipelines))
    pruned = retention.prune(service.store, service.storage)
    click.echo(f"{pruned.expired} run(s) expired; files of {pruned.wiped} removed")
    if pruned.failed:
        _fail(f"the files of {pruned.failed} expired run(s) could not be removed (see above)", 1)


@main.group()
def token() -> None:
    """Make API tokens, with which programs act as a user on the REST API."""


@token.command("create")
@click.argument("username")
@click.option("--name", default="command line", show_default=True, help="What it is for.")
@settings_options
def token_create(
    username: str,
    name: str,
    data_dir: Path | None,
    database_url: str | None,
    pipelines: tuple[str, ...],
) -> None:
    """Make an API token for USERNAME and print its key (shown this once).

    Programs send it as ``Authorization: Bearer <key>``; ``gristmill submit`` and the other
    client commands read it from GRISTMILL_TOKEN.
    """
    from gristmill.server.conf import setup

    setup(build_settings(data_dir, database_url, pipelines))
    from gristmill.server.tokens import create_for_username  # needs Django set up

    try:
        key = create_for_username(username, name)
    except LookupError as error:
        _fail(str(error.args[0]), 2)
    click.echo(key)


@main.command(
    context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
    add_help_option=False,
)
@click.argument("arguments", nargs=-1, type=click.UNPROCESSED)
def manage(arguments: tuple[str, ...]) -> None:
    """Run a Django management command on gristmill's database, e.g.
    ``gristmill manage createsuperuser`` (settings from GRISTMILL_* variables)."""
    from django.core.management import execute_from_command_line

    from gristmill.server.conf import setup

    setup(build_settings(None, None, ()))
    execute_from_command_line(["gristmill manage", *arguments])


from gristmill.cli.client import COMMANDS  # noqa: E402 - registered after the group exists
from gristmill.cli.pipelines import pipelines  # noqa: E402
from gristmill.cli.serve import serve  # noqa: E402

main.add_command(serve)
main.add_command(pipelines)
for command in COMMANDS:
    main.add_command(command)

if __name__ == "__main__":
    main()
