"""``gristmill pipelines list|show|export|check|import``: the configured pipelines, and YAML files.

None of these touch the database: they read ``--pipelines`` / ``GRISTMILL_PIPELINES`` (or the
files named) and print. See docs/cli.md.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from gristmill.authoring.commands import Command
from gristmill.authoring.pipelines import Pipeline
from gristmill.authoring.registry import YAML_SUFFIXES, Registry
from gristmill.authoring.yamlexport import duration_text, export_pipelines, step_entry
from gristmill.authoring.yamlimport import load_file, load_text
from gristmill.cli.options import build_settings
from gristmill.errors import PipelineFileError

_err = Console(stderr=True, soft_wrap=True, highlight=False)

pipelines_option = click.option(
    "--pipelines",
    "pipelines",
    multiple=True,
    metavar="SPEC",
    help="Pipelines to read: a dotted path, a .py or a .yaml file (repeatable). "
    "[env: GRISTMILL_PIPELINES]",
)


def _registry(pipelines: tuple[str, ...]) -> Registry:
    return Registry(specs=build_settings(None, None, pipelines).pipelines)


def _fail(problems: list[str], code: int = 1) -> NoReturn:
    for problem in problems:
        _err.print(f"[red]error:[/] {escape(problem)}")
    raise SystemExit(code)


def _kind(task: Any) -> str:
    entry = step_entry(task, [])
    if "task" in entry:
        return f"library task {entry['task']}"
    if "command" in entry:
        assert isinstance(task, Command)
        words = " ".join(" ".join(task.argv).split())
        return f"command {words[:70]}" + ("…" if len(words) > 70 else "")
    return f"Python {entry['python']}"


@click.group()
def pipelines() -> None:
    """List, show and export pipelines; check and import YAML pipeline files."""


@pipelines.command("list")
@pipelines_option
def list_(pipelines: tuple[str, ...]) -> None:
    """List the configured pipelines: name, title, steps, access, queue and whether they can
    be exported to YAML."""
    table = Table("name", "title", "steps", "access", "queue", "YAML")
    for pipeline in _registry(pipelines):
        notes: list[str] = []
        for task in pipeline.steps:
            step_entry(task, notes)
        table.add_row(
            pipeline.name,
            pipeline.title,
            str(len(pipeline.steps)),
            str(pipeline.access),
            pipeline.queue,
            "no: Python steps" if notes else "yes",
        )
    Console(soft_wrap=True).print(table)


@pipelines.command()
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print what the API says about it, as JSON.")
@pipelines_option
def show(name: str, as_json: bool, pipelines: tuple[str, ...]) -> None:
    """Show one configured pipeline: its steps, inputs, parameters, queue and retention."""
    pipeline = _registry(pipelines).get(name)
    if as_json:
        click.echo(json.dumps(pipeline.describe(), indent=2))
        return
    out = Console(soft_wrap=True, highlight=False)
    out.print(f"[bold]{escape(pipeline.name)}[/]: {escape(pipeline.title)}")
    if pipeline.description:
        out.print(escape(pipeline.description))
    retention = duration_text(pipeline.retention)
    out.print(
        f"access {pipeline.access}, queue {escape(pipeline.queue)}, priority "
        f"{pipeline.priority}, runs kept {retention}"
    )
    inputs = pipeline.inputs
    extensions = ", ".join(inputs.extensions) if inputs.extensions is not None else "any"
    kinds = ", ".join(str(kind) for kind in inputs.kinds)
    out.print(
        f"inputs: {inputs.min_count}-{inputs.max_count} of {kinds}; extensions {extensions}; "
        f"up to {inputs.max_size} bytes"
    )
    for field, info in pipeline.params.model_fields.items():
        default = "required" if info.is_required() else f"default {info.default!r}"
        kind = getattr(info.annotation, "__name__", str(info.annotation))
        out.print(f"param {escape(field)}: {escape(kind)}, {escape(default)}")
    for number, task in enumerate(pipeline.steps, 1):
        out.print(f"{number}. {escape(task.step_name)}: {escape(_kind(task))}")


@pipelines.command()
@click.argument("names", nargs=-1)
@click.option("--all", "everything", is_flag=True, help="Export every configured pipeline.")
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write to FILE."
)
@pipelines_option
def export(
    names: tuple[str, ...], everything: bool, output: Path | None, pipelines: tuple[str, ...]
) -> None:
    """Print the pipelines NAMES as YAML (or write them to FILE with -o). Python steps are
    written as `python: module.Name` and named in a warning: the import refuses them."""
    registry = _registry(pipelines)
    if not names and not everything:
        raise click.UsageError("name the pipelines to export, or give --all")
    chosen: list[Pipeline] = list(registry) if everything else [registry.get(n) for n in names]
    exported = export_pipelines(chosen)
    for note in exported.notes:
        _err.print(f"[yellow]warning:[/] not exported: {escape(note)}")
    if output is None:
        click.echo(exported.text, nl=False)
    else:
        output.write_text(exported.text, encoding="utf-8")
        _err.print(f"wrote {len(chosen)} pipeline(s) to {escape(str(output))}")


def _checked(files: tuple[Path, ...]) -> dict[Path, list[Pipeline]]:
    found: dict[Path, list[Pipeline]] = {}
    problems: list[str] = []
    for path in files:
        try:
            found[path] = load_file(path)
        except PipelineFileError as error:
            problems.extend(error.problems)
    if problems:
        _fail(problems)
    return found


@pipelines.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
def check(files: tuple[Path, ...]) -> None:
    """Check YAML pipeline files: every mistake is printed with its line; exit 1 if any."""
    for path, found in _checked(files).items():
        names = ", ".join(p.name for p in found)
        click.echo(f"{path}: ok, {len(found)} pipeline(s): {names}")


def _names_in(folder: Path, skip: Path) -> dict[str, Path]:
    taken: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() in YAML_SUFFIXES and path.name != skip.name:
            try:
                taken |= {p.name: path for p in load_file(path)}
            except PipelineFileError:
                continue  # a broken neighbour is its own problem, reported when it is loaded
    return taken


@pipelines.command("import")
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--into",
    "folder",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="The folder of YAML pipeline files to copy it into (made if missing).",
)
@click.option("--force", is_flag=True, help="Replace a file of the same name in the folder.")
def import_(file: Path, folder: Path, force: bool) -> None:
    """Check the YAML pipeline FILE and copy it into a folder of pipeline files. Nothing is
    copied unless the whole file is valid and its pipelines' names are new to the folder."""
    target = folder / file.name
    try:
        # Read as it will be from its new place: relative schema paths start from the folder.
        text = file.read_text(encoding="utf-8")
        found = load_text(text, str(file), base=folder.absolute())
    except (OSError, UnicodeDecodeError) as error:
        _fail([f"{file}: cannot be read: {error}"])
    except PipelineFileError as error:
        _fail(error.problems)
    folder.mkdir(parents=True, exist_ok=True)
    if target.exists() and not force:
        _fail([f"{target} exists; give --force to replace it"])
    taken = _names_in(folder, target)
    clashes = [
        f"pipeline {p.name!r} is already in {taken[p.name]}" for p in found if p.name in taken
    ]
    if clashes:
        _fail(clashes)
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=".import-", suffix=file.suffix)
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        out.write(text)
    os.replace(temporary, target)
    names = ", ".join(p.name for p in found)
    click.echo(f"imported {len(found)} pipeline(s) into {target}: {names}")
    click.echo(f"offer them with --pipelines {target} (or add it to GRISTMILL_PIPELINES)")
