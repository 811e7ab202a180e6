"""``manage.py gristmill_worker``: gristmill's workers in a Django site that has gristmill as
one of its apps, on the site's database and ``GRISTMILL_*`` settings (the same as
``gristmill worker`` run with the site's ``DJANGO_SETTINGS_MODULE``)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from gristmill.errors import GristmillError


class Command(BaseCommand):
    help = (
        "Start gristmill's worker processes, which run queued runs, until Ctrl-C or SIGTERM. "
        "The settings are the site's GRISTMILL_* settings."
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
        from gristmill.server.conf import current_settings
        from gristmill.server.workers import run_workers

        def announce(banner: str) -> None:
            self.stdout.write(banner)
            self.stdout.flush()

        try:
            settings = current_settings()
            if options["workers"] is not None:
                if options["workers"] < 1:
                    raise CommandError(f"--workers must be at least 1, not {options['workers']}")
                settings = replace(settings, workers=options["workers"])
            if options["queues"]:
                settings = replace(settings, queues=tuple(options["queues"]))
            run_workers(settings, announce)
        except GristmillError as error:
            raise CommandError(str(error)) from None
