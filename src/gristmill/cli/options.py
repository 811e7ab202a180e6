"""Options shared by the ``gristmill`` commands, turned into settings."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from gristmill.settings import Settings

F = TypeVar("F", bound=Callable[..., Any])


def settings_options(function: F) -> F:
    """Add --data-dir, --database-url and --pipelines to a command."""
    function = click.option(
        "--pipelines",
        "pipelines",
        multiple=True,
        metavar="SPEC",
        help="Pipelines to offer: a dotted path, a .py or a .yaml file (repeatable). "
        "[env: GRISTMILL_PIPELINES]",
    )(function)
    function = click.option(
        "--database-url",
        metavar="URL",
        help="sqlite:///path or postgres://user@host/db [env: GRISTMILL_DATABASE_URL]",
    )(function)
    function = click.option(
        "--data-dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Where the database and files live [env: GRISTMILL_DATA_DIR; "
        "default: ./gristmill-data]",
    )(function)
    return function


param_option = click.option(
    "--param",
    "-p",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter value (repeatable).",
)
"""The ``--param NAME=VALUE`` option of the commands that start runs."""


def build_settings(
    data_dir: Path | None, database_url: str | None, pipelines: tuple[str, ...], **overrides: Any
) -> Settings:
    """Settings from the environment, with the command-line options on top; in a Django
    project that installs gristmill (``DJANGO_SETTINGS_MODULE``), the project's settings."""
    if os.environ.get("DJANGO_SETTINGS_MODULE"):
        from gristmill.server.conf import current_settings

        settings = current_settings()
    else:
        settings = Settings.from_env()
    if data_dir is not None:
        settings = replace(settings, data_dir=data_dir.absolute())
        # The database follows the data directory unless one was named explicitly.
        explicit = database_url or os.environ.get("GRISTMILL_DATABASE_URL")
        if not explicit and settings.database_url.startswith("sqlite"):
            database_url = f"sqlite:///{settings.data_dir / 'gristmill.sqlite3'}"
    if database_url:
        settings = replace(settings, database_url=database_url)
    if pipelines:
        settings = replace(settings, pipelines=tuple(pipelines))
    return replace(settings, **{k: v for k, v in overrides.items() if v is not None})


def parse_params(pairs: tuple[str, ...]) -> dict[str, str]:
    """``("a=1", "b=x")`` → ``{"a": "1", "b": "x"}``; a pair without '=' is a usage error."""
    params = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--param")
        params[name.strip()] = value
    return params
