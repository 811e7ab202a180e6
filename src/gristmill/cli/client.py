"""``gristmill submit|status|logs|download|findings|retry-batches``: use a gristmill server
over its REST API."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import click
from rich.console import Console

from gristmill.authoring.validation import params_from_text
from gristmill.cli.display import map_lines, run_display
from gristmill.cli.options import param_option, parse_params
from gristmill.client import Client, ResponseError, RunItems, ServerUnreachableError
from gristmill.client.config import POLL_SECONDS, absolute_url
from gristmill.states import RunState

err = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True, highlight=False)

server_option = click.option(
    "--server",
    envvar="GRISTMILL_SERVER",
    default="http://127.0.0.1:8000",
    show_default=True,
    help="The server's address [env: GRISTMILL_SERVER].",
)


def _fail(message: str, code: int = 1) -> NoReturn:
    err.print(f"[bold red]error:[/] {message}", highlight=False, markup=True)
    sys.exit(code)


@contextmanager
def _client(server: str, field: Callable[[str], str] = str) -> Iterator[Client]:
    """A client of ``server``; its errors are printed and end the command (exit 2 for the
    caller's mistakes and an unreachable server, 1 for the server's)."""
    # The token comes from the environment only: an option would leave it in shell histories.
    try:
        with Client(server) as client:
            yield client
    except ServerUnreachableError as error:
        _fail(error.message, 2)
    except ResponseError as error:
        if error.code is None:
            _fail(error.message)
        for name, messages in error.details.items():
            for message in messages:
                err.print(f"[bold red]error:[/] {field(name)}: {message}", highlight=False)
        if not error.details:
            err.print(f"[bold red]error:[/] {error.message}", highlight=False)
        sys.exit(2 if error.status < 500 else 1)


def _follow(client: Client, run_id: str) -> dict[str, Any]:
    """Show progress and the log until the run ends; return its last status."""
    after = 0
    with run_display(err) as display:
        while True:
            status = client.status(run_id)
            log = client.log(run_id, after)
            for line in log["lines"]:
                display.log(line["step"], line["text"])
            after = log["next"]
            moving = status.get("progress") or {}
            display.update(
                status["state"],
                status.get("current_step"),
                status.get("stage"),
                moving.get("done"),
                moving.get("total"),
            )
            if RunState(status["state"]).is_terminal:
                return status
            time.sleep(POLL_SECONDS)  # polling a remote server: the doorbells are local only


def _print_status(status: dict[str, Any]) -> None:
    out.print(f"run {status['id']} [bold]{status['state']}[/] ({status['pipeline']})")
    maps = {summary["step"]: summary for summary in status.get("maps", [])}
    for step in status["steps"]:
        duration = f" {step['duration']:.2f}s" if step.get("duration") is not None else ""
        out.print(f"  {step['name']}: {step['state']}{duration}")
        if step["name"] in maps:
            for line in map_lines(maps[step["name"]]):
                out.print(f"    {line}", markup=False)
    if status.get("error"):
        reference = status["error"].get("reference")
        out.print(
            f"  error: {status['error']['message']}"
            + (f" (reference {reference})" if reference else ""),
            markup=False,
        )


@click.command()
@click.argument("pipeline")
@click.argument("files", nargs=-1, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@param_option
@click.option("--wait", is_flag=True, help="Follow the run until it ends; exit 1 if it fails.")
@click.option(
    "--bulk",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Submit one run per line of this JSON Lines file, all or none; print their ids.",
)
@click.option(
    "--ancestor",
    metavar="RUN",
    help="An earlier, succeeded run to compare with: its id or its address.",
)
@click.option(
    "--from-run",
    metavar="RUN",
    help="A filtered run: take the items of this earlier run's map step that match "
    "--where or --with-finding.",
)
@click.option("--step", metavar="STEP", help="With --from-run: the map step whose items to take.")
@click.option(
    "--where",
    metavar="PATH=VALUE",
    help="With --from-run: the items where a JSON path has a value, e.g. $.buyer.id=GB-1 "
    "(VALUE is read as JSON if it is JSON, else as text).",
)
@click.option(
    "--with-finding",
    metavar="KIND",
    help="With --from-run: the items with a finding of this kind.",
)
@server_option
def submit(
    pipeline: str,
    files: tuple[Path, ...],
    params: tuple[str, ...],
    wait: bool,
    bulk: Path | None,
    ancestor: str | None,
    from_run: str | None,
    step: str | None,
    where: str | None,
    with_finding: str | None,
    server: str,
) -> None:
    """Submit FILES to PIPELINE on a server and print the run's id.

    With --from-run RUN and --where PATH=VALUE or --with-finding KIND, the run's input is the
    items of RUN's map step that match (a filtered run), chosen by the server's worker.

    With --bulk FILE.jsonl, each line of the file is one run, a JSON object as the API's JSON
    submission takes it: {"params": {...}, "inputs": [{"kind": "text", "text": "..."}]}.
    Parameters given with --param apply to every line that does not set them.
    """
    if bulk is not None:
        if files or wait or ancestor:
            _fail(
                "--bulk takes its runs from the file: give no FILES, --wait or --ancestor "
                '(a line names its own: "ancestor": "RUN")',
                2,
            )
        _submit_bulk(pipeline, bulk, params, server)
        return
    inputs: list[Any] = list(files)
    filtered = _filtered_input(from_run, step, where, with_finding)
    if filtered is not None:
        inputs.append(filtered)
    with _client(server) as client:
        # The API takes parameters as JSON values of their types: convert the texts by the
        # pipeline's parameter schema ("5" for an integer is 5).
        schema = client.pipeline(pipeline)["params_schema"]
        answer = client.submit(
            pipeline,
            *inputs,
            params=params_from_text(schema, parse_params(params)),
            ancestor=ancestor,
        )
        run_id = answer["id"]
        out.print(run_id)
        err.print(f"submitted: {absolute_url(client.server, answer['url'])}", highlight=False)
        if wait:
            status = _follow(client, run_id)
            _print_status(status)
            if status["state"] != "succeeded":
                sys.exit(1)


def _filtered_input(
    from_run: str | None, step: str | None, where: str | None, with_finding: str | None
) -> RunItems | None:
    """The items input --from-run, --where and --with-finding name (None without them)."""
    if from_run is None:
        if step or where or with_finding:
            _fail("--step, --where and --with-finding go with --from-run RUN", 2)
        return None
    if (where is None) == (with_finding is None):
        _fail("--from-run takes --where PATH=VALUE or --with-finding KIND (one of them)", 2)
    if with_finding is not None:
        return RunItems(from_run, step, finding=with_finding)
    assert where is not None
    path, equals, text = where.partition("=")
    if not equals or not path.strip():
        _fail(f"--where takes PATH=VALUE, e.g. $.buyer.id=GB-1; got {where!r}", 2)
    try:
        value: Any = json.loads(text)
    except ValueError:
        value = text
    return RunItems(from_run, step, where=path.strip(), value=value)


def _read_bulk(path: Path) -> tuple[list[dict[str, Any]], list[int]]:
    """The entries of a JSON Lines file and the line number of each (blank lines skipped)."""
    entries: list[dict[str, Any]] = []
    lines: list[int] = []
    problems: list[str] = []
    with path.open(encoding="utf-8", errors="replace") as stream:
        for number, line in enumerate(stream, start=1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line.rstrip())
            except json.JSONDecodeError as error:
                problems.append(f"line {number}: not JSON ({error.msg} at column {error.colno})")
                continue
            if not isinstance(entry, dict):
                problems.append(f"line {number}: must be a JSON object with params and inputs")
                continue
            entries.append(entry)
            lines.append(number)
    if not entries and not problems:
        problems.append(f"{path.name} has no runs: give one JSON object per line")
    for problem in problems:
        err.print(f"[bold red]error:[/] {problem}", highlight=False)
    if problems:
        sys.exit(2)
    return entries, lines


def _submit_bulk(pipeline: str, path: Path, params: tuple[str, ...], server: str) -> None:
    entries, lines = _read_bulk(path)

    def line_of(field: str) -> str:
        # The server names an entry by its index; the user knows it by its line.
        parts = field.split(".", 2)
        if len(parts) >= 2 and parts[0] == "entries" and parts[1].isdigit():
            index = int(parts[1])
            if index < len(lines):
                return f"line {lines[index]}" + (f": {parts[2]}" if len(parts) == 3 else "")
        return field

    with _client(server, line_of) as client:
        shared = parse_params(params)
        if shared:
            schema = client.pipeline(pipeline)["params_schema"]
            defaults = params_from_text(schema, shared)
            for entry in entries:
                given = entry.get("params")
                if isinstance(given, dict):
                    entry["params"] = {**defaults, **given}
                elif given is None:
                    entry["params"] = dict(defaults)
        runs = client.submit_many(pipeline, entries)
    for run in runs:
        out.print(run["id"])
    err.print(f"submitted {len(runs)} runs", highlight=False)


@click.command()
@click.argument("run_id")
@server_option
def status(run_id: str, server: str) -> None:
    """Print a run's state and steps."""
    with _client(server) as client:
        _print_status(client.status(run_id))


@click.command()
@click.argument("run_id")
@click.option("--follow", "-f", is_flag=True, help="Keep printing until the run ends.")
@server_option
def logs(run_id: str, follow: bool, server: str) -> None:
    """Print a run's log."""
    with _client(server) as client:
        if follow:
            _follow(client, run_id)
            return
        after = 0
        while True:
            log = client.log(run_id, after)
            for line in log["lines"]:
                out.print(f"{line['step']} {line['text']}".strip(), markup=False)
            if not log["lines"]:
                return
            after = log["next"]


@click.command()
@click.argument("run_id")
@click.option(
    "--output",
    "-o",
    type=click.Path(file_okay=False, path_type=Path),
    help="Directory to save into [default: ./RUN_ID].",
)
@server_option
def download(run_id: str, output: Path | None, server: str) -> None:
    """Save a run's output files (STEP/NAME under the directory)."""
    target = (output or Path(run_id)).resolve()
    with _client(server) as client:
        for item in client.outputs(run_id):
            path = (target / item["step"] / item["name"]).resolve()
            if not path.is_relative_to(target):
                _fail(f"the server named an output outside the directory: {item['name']!r}")
            client.download(run_id, item["step"], item["name"], path)
            out.print(f"{path} ({item['size']} bytes)")


@click.command()
@click.argument("run_id")
@click.option("--step", "-s", required=True, help="The map step whose findings to read.")
@click.option("--kind", "-k", help="Only findings of this kind.")
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Save them as JSON Lines in this file (streamed) instead of printing them.",
)
@server_option
def findings(run_id: str, step: str, kind: str | None, output: Path | None, server: str) -> None:
    """Print a map step's findings, one JSON object a line ({item, batch, kind, finding}), or
    save them with -o (while the step runs: those of the batches done so far)."""
    with _client(server) as client:
        if output is not None:
            client.download_findings(run_id, step, output, kind=kind)
            err.print(f"{output} ({output.stat().st_size:,} bytes)", highlight=False)
            return
        for finding in client.findings(run_id, step, kind=kind):
            click.echo(json.dumps(finding, ensure_ascii=False))


@click.command("retry-batches")
@click.argument("run_id")
@server_option
def retry_batches(run_id: str, server: str) -> None:
    """Queue again the failed batches of an ended run's map steps, and only those."""
    with _client(server) as client:
        answer = client.retry_batches(run_id)
        count = answer["batches"]
        batches = f"{count:,} batch{'es' if count != 1 else ''}"
        out.print(f"run {run_id} {answer['state']}: {batches} queued again")


COMMANDS = (submit, status, logs, download, findings, retry_batches)
