"""``manage.py gristmill_worker``: gristmill's workers in a Django project that installs it as
an app, on the project's database and settings (the same as ``gristmill worker`` run with the
project's ``DJANGO_SETTINGS_MODULE``)."""

from __future__ import annotations

from typing import Any

import click
from django.core.management.base import BaseCommand, CommandError, CommandParser

from gristmill.errors import GristmillError


class Command(BaseCommand):
    help = (
        "Start gristmill's worker processes, which run queued runs, until Ctrl-C or SIGTERM. "
        "The settings are the project's GRISTMILL_* settings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--workers",
            "-w",
            type=int,
            help="worker processes (default: GRISTMILL_WORKERS, else the CPU count)",
        )
        parser.add_argument(
            "--queue", "-Q", dest="queues", action="append", help="take only from this queue"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        from gristmill.cli.main import worker

        given = [] if options["workers"] is None else ["--workers", str(options["workers"])]
        for queue in options["queues"] or ():
            given += ["--queue", queue]
        try:
            worker.main(
                args=given,
                prog_name="manage.py gristmill_worker",
                standalone_mode=False,
            )
        except click.ClickException as error:
            raise CommandError(error.format_message()) from None
        except GristmillError as error:
            raise CommandError(str(error)) from None
