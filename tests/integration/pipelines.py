"""Pipelines used by the integration tests (loaded by file path, as users do)."""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from gristmill import (
    Command,
    Inputs,
    Pipeline,
    Reservoir,
    RunContext,
    Task,
    TaskError,
    items,
    map_step,
    task,
)

OPTIONAL = Inputs(min_count=0)


class Params(BaseModel):
    control: str = ""
    value: int = 1


@task
def one(run: RunContext) -> dict[str, Any]:
    return {"ok": True, "value": run.params.value}


trivial = Pipeline("trivial", [one], params=Params, inputs=OPTIONAL)


def _constant(i: int) -> Any:
    def constant(run: RunContext) -> int:
        return i

    return task(name=f"s{i}")(constant)


ten = Pipeline("ten", [_constant(i) for i in range(10)], inputs=OPTIONAL)


def _wait_for_release(run: RunContext, control: Path) -> None:
    deadline = time.monotonic() + 60
    while not (control / "release").exists():
        run.check_cancelled()
        if time.monotonic() > deadline:
            raise TaskError("the test never released this step")
        time.sleep(0.01)


@task(name="hold")
def hold(run: RunContext) -> dict[str, Any]:
    """Blocks on its first attempt until the test creates control/release."""
    control = Path(run.params.control)
    (control / f"started-{run.attempt}").write_text(str(os.getpid()))
    if run.attempt == 1 or (control / "hold-always").exists():
        _wait_for_release(run, control)
    path = run.workdir / "out.txt"
    path.write_text(f"attempt {run.attempt}")
    run.output(path)
    (control / f"finished-{run.attempt}").touch()
    return {"attempt": run.attempt, "pid": os.getpid()}


@task
def after(run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
    return {"saw_attempt": upstream["hold"]["attempt"]}


holding = Pipeline("holding", [one, hold, after], params=Params, inputs=OPTIONAL)


@task
def kill_my_worker(run: RunContext) -> None:
    os.kill(os.getpid(), signal.SIGKILL)


crashing = Pipeline("crashing", [kill_my_worker], max_attempts=3, inputs=OPTIONAL)


@task
def bad_data(run: RunContext) -> None:
    raise TaskError("row 3 has no 'id' field")


failing = Pipeline("failing", [one, bad_data, after], params=Params, inputs=OPTIONAL)


@task
def broken(run: RunContext) -> None:
    raise ZeroDivisionError("division by zero")


internal = Pipeline("internal", [broken], inputs=OPTIONAL)


@task
def returns_a_set(run: RunContext) -> Any:
    return {"values": {1, 2}}


not_json = Pipeline("not-json", [returns_a_set], inputs=OPTIONAL)


@task(timeout=0.3)
def cooperative_slowpoke(run: RunContext) -> None:
    while True:
        run.check_cancelled()
        time.sleep(0.01)


timing_out = Pipeline("timing-out", [cooperative_slowpoke], inputs=OPTIONAL)


@task(timeout=0.3)
def stubborn_slowpoke(run: RunContext) -> None:
    (Path(run.params.control) / f"started-{run.attempt}").write_text(str(os.getpid()))
    time.sleep(60)


stubborn = Pipeline("stubborn", [stubborn_slowpoke], params=Params, inputs=OPTIONAL)


class NotForJson(Task):
    def is_applicable(self, run: RunContext) -> bool:
        return run.input.extension != "json"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> str:
        return "processed"


skipping = Pipeline("skipping", [NotForJson, one], params=Params)


@task
def report_progress(run: RunContext) -> str:
    run.log("first line")
    with run.stage("halfway"):
        run.progress(5, 10)
        run.log("second line")
    return "done"


reporting = Pipeline("reporting", [report_progress], inputs=OPTIONAL)


@task(timeout=0.2)
def late_but_done(run: RunContext) -> str:
    while not run.cancelled:
        time.sleep(0.01)
    return "finished after its limit"


@task
def next_step(run: RunContext) -> dict[str, bool]:
    return {"cancelled_at_start": run.cancelled}


overrun = Pipeline("overrun", [late_but_done, next_step], inputs=OPTIONAL)


# -- for the REST API tests --------------------------------------------------------------

picky = Pipeline(
    "picky",
    [one],
    params=Params,
    inputs=Inputs(kinds=["file", "text"], extensions=["txt", "csv"], max_size=16, max_count=2),
)


class ReportParams(BaseModel):
    title: str = "report"


class WriteReport(Task):
    """Writes two outputs (one in a subdirectory) and shows a summary of its result."""

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        lines = run.input.path.read_text().splitlines()
        (run.workdir / "report.txt").write_text(f"{run.params.title}\n{len(lines)} lines\n")
        run.output("report.txt")
        (run.workdir / "tables").mkdir()
        (run.workdir / "tables" / "counts.csv").write_text(f"lines\n{len(lines)}\n")
        run.output("tables/counts.csv")
        return {"title": run.params.title, "lines": len(lines)}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        return {"summary": f"{result['title']}: {result['lines']} lines of {run.input.name}"}


class BrokenContext(Task):
    """Succeeds, but cannot show its result."""

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> int:
        return 1

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        raise ZeroDivisionError("division by zero")


reports = Pipeline("reports", [WriteReport, BrokenContext], params=ReportParams)


# -- for the web page tests --------------------------------------------------------------


class Colour(StrEnum):
    RED = "red"
    GREEN = "green"


class TableParams(BaseModel):
    top: int = Field(10, ge=1, description="How many rows to show")
    ratio: float = 0.5
    loud: bool = True
    colour: Colour = Colour.RED
    label: str = "table"
    exclude: list[str] = Field(default_factory=list, description="Words to leave out")

    @model_validator(mode="after")
    def _loud_tables_are_short(self) -> TableParams:
        if self.loud and self.top > 100:
            raise ValueError("a loud table shows at most 100 rows")
        return self


@task(title="Tabulate")
def tabulate(run: RunContext) -> dict[str, Any]:
    return {
        "label": run.params.label,
        "rows": [{"word": "mill", "count": 3}, {"word": "grist", "count": 2}],
        "tags": ["<b>plain</b>", "text"],
        "nested": {"depth": {"level": 2}},
        "missing": None,
    }


class Greet(Task):
    """Shows its context with a template of its own."""

    title = "Greeting"
    template = "web_tests/greeting.html"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, str]:
        return {"greeting": f"hello from {run.params.colour}"}


tabular = Pipeline(
    "tabular",
    [tabulate, Greet],
    title="Tables",
    description="Shows a result as tables.",
    params=TableParams,
    inputs=OPTIONAL,
)

json_only = Pipeline("json-only", [one], params=Params, inputs=Inputs(kinds=["json"]))


members_only = Pipeline("members-only", [one], params=Params, inputs=OPTIONAL, access="signed-in")
staff_only = Pipeline("staff-only", [one], params=Params, inputs=OPTIONAL, access="staff")


@task
def list_inputs(run: RunContext) -> list[dict[str, Any]]:
    return [
        {"name": f.name, "kind": f.kind, "source": f.source, "text": f.path.read_text()}
        for f in run.inputs
    ]


any_source = Pipeline(
    "any-source",
    [list_inputs],
    inputs=Inputs(kinds=["file", "text", "url", "datafile", "run"], max_count=5, max_size=4096),
)


# -- for the cancellation tests ----------------------------------------------------------


class CancelParams(BaseModel):
    control: str = ""
    seconds: float = 0.3
    size: int = 0


def _mark(run: RunContext, what: str) -> None:
    """Tell the test that the step got here (a file named for the run and ``what``)."""
    (Path(run.params.control) / f"{run.run_id}-{what}").touch()


@task
def silent(run: RunContext) -> int:
    """Reports nothing and never looks whether it was cancelled."""
    _mark(run, "silent")
    time.sleep(run.params.seconds)
    return 1


@task
def counting(run: RunContext) -> int:
    """Reports progress and stops when cancelled; never ends on its own."""
    deadline = time.monotonic() + 20
    done = 0
    while time.monotonic() < deadline:
        done += 1
        run.progress(done)
        if done == 10:
            _mark(run, "counting")
        run.check_cancelled()
        time.sleep(0.001)
    raise TaskError("the test never cancelled this step")


@task
def last(run: RunContext) -> str:
    """Returns at once, with ``size`` bytes of result: the write that ends the run."""
    _mark(run, "last")
    return "x" * run.params.size


cancel_silent = Pipeline("cancel-silent", [silent, last], params=CancelParams, inputs=OPTIONAL)
cancel_progress = Pipeline(
    "cancel-progress", [counting, last], params=CancelParams, inputs=OPTIONAL
)
cancel_last = Pipeline("cancel-last", [last], params=CancelParams, inputs=OPTIONAL)
cancel_steps = Pipeline(
    "cancel-steps", [*(_constant(i) for i in range(20)), last], params=CancelParams, inputs=OPTIONAL
)


# -- files handed on between steps (test_handing_on.py) ------------------------------------

_UPPER = (
    "import sys; t = open(sys.argv[1]).read(); open('upper.txt', 'w').write(t.upper()); "
    "print('read', sys.argv[1])"
)


@task(needs=["upper"], staff_only=("where",))
def shout(run: RunContext) -> dict[str, Any]:
    """Reads the first step's file; with a control directory, kills its worker on attempt 1."""
    if run.params.control and run.attempt == 1:
        (Path(run.params.control) / "started-1").write_text(str(os.getpid()))
        os.kill(os.getpid(), signal.SIGKILL)
    (made,) = run.upstream_files("upper")
    run.log(f"reading {made.path}")
    with made.open("r") as text:
        return {"text": text.read(), "attempt": run.attempt, "where": str(made.path)}


handing_on = Pipeline(
    "handing-on",
    [
        Command("upper", [sys.executable, "-c", _UPPER, "{input}"], outputs=["upper.txt"]),
        Command("count", ["wc", "-c", "{outputs.upper}"]),
        shout,
    ],
    params=Params,
    inputs=Inputs(kinds=["file", "text"]),
    max_attempts=3,
)


# -- inputs checked by content (test_content_types.py) --------------------------------------

json_or_csv = Pipeline(
    "json-or-csv",
    [list_inputs],
    inputs=Inputs(kinds=["file", "url"], extensions=["json", "csv"], max_count=3),
)


# -- log control (test_handing_on.py) -------------------------------------------------------


@task(log_level="WARNING")
def noisy(run: RunContext) -> dict[str, int]:
    """A third-party library that logs and warns far too much."""
    import logging
    import warnings

    chatty = logging.getLogger("chatty.library")
    for number in range(2000):
        chatty.warning("odd value %d in %s", number, run.input.path)
        chatty.info("not at this level")
        warnings.warn("this API is old", DeprecationWarning, stacklevel=1)
    return {"checked": 2000}


noisy_library = Pipeline("noisy-library", [noisy], inputs=Inputs(kinds=["file", "text"]))


@task
def line_count(run: RunContext) -> dict[str, Any]:
    """Counts the input's lines and compares with the ancestor's count, if there is one."""
    lines = len(run.input.path.read_text(encoding="utf-8").splitlines())
    if run.ancestor is None:
        return {"lines": lines, "ancestor": None}
    before = run.ancestor.result("line_count")["lines"]
    (earlier,) = run.ancestor.inputs
    return {
        "lines": lines,
        "ancestor": run.ancestor.id,
        "change": lines - before,
        "earlier_input": earlier.path.read_text(encoding="utf-8"),
        "earlier_outputs": [o.name for o in run.ancestor.outputs()],
    }


class LineCountContext(Task):
    """A second step whose results page shows the comparison the first step made."""

    name = "compare"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        return dict(upstream["line_count"])

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        if result["ancestor"] is None:
            return {"comparison": "no earlier run to compare with"}
        return {"comparison": f"{result['change']:+d} lines since run {result['ancestor']}"}


TEXT = Inputs(kinds=["file", "text", "url"])
compared = Pipeline("compared", [line_count, LineCountContext], inputs=TEXT)
compared_auto = Pipeline(
    "compared-auto", [line_count, LineCountContext], inputs=TEXT, ancestor="previous"
)
compared_other = Pipeline("compared-other", [line_count], inputs=TEXT, ancestors_from=["compared"])


class MapParams(BaseModel):
    control: str = ""
    hold: int = 0
    """The item whose batch waits (on its first delivery) until control/release exists."""
    bad: int = 0
    """The item that raises while control/broken exists."""


def _check_item(item: Any, run: RunContext) -> Any:
    n, params = item["n"], run.params
    if params.control:
        control = Path(params.control)
        if n == params.hold and not (control / "held").exists():
            (control / "held").write_text(str(os.getpid()))
            _wait_for_release(run, control)
        if n == params.bad and (control / "broken").exists():
            raise ValueError(f"cannot check item {n}")
    if n % 7 == 0:
        return {"kind": "seven", "n": n}
    if n % 50 == 0:
        return [{"kind": "fifty", "n": n}, {"kind": "round", "n": n}]
    return None


@map_step(items=items.json_lines(), batch_size=500, on_failure="fail", name="check")
def check_failing(item: Any, run: RunContext) -> Any:
    return _check_item(item, run)


@map_step(items=items.json_lines(), batch_size=500, on_failure="continue", name="check")
def check_continuing(item: Any, run: RunContext) -> Any:
    return _check_item(item, run)


@task
def tally(run: RunContext) -> dict[str, Any]:
    """The reduce: counts read back from the findings, the summary, and 5 examples a kind."""
    sample = Reservoir(k=5, seed=7)
    counted: dict[str, int] = {}
    items_seen = []
    for number, finding in run.findings("check"):
        counted[finding["kind"]] = counted.get(finding["kind"], 0) + 1
        sample.add(finding["kind"], number)
        items_seen.append(number)
    summary = run.map_summary("check")
    return {
        "counted": counted,
        "summary": summary["counts"],
        "items_done": summary["items_done"],
        "findings": len(items_seen),
        "distinct": len(set(items_seen)),
        "examples": sample.as_dict(),
    }


mapping = Pipeline("mapping", [check_failing, tally], params=MapParams)
mapping_continue = Pipeline("mapping-continue", [check_continuing, tally], params=MapParams)
# -- steps without network (test_network.py) ------------------------------------------------


class ReachParams(BaseModel):
    tcp_port: int = 0
    udp_port: int = 0
    control: str = ""


def _reach(tcp_port: int, udp_port: int) -> dict[str, str]:
    """Try a TCP connection, a UDP question (what a DNS lookup sends) and a name lookup; say
    how each went."""
    import socket

    tried: dict[str, str] = {}
    try:
        with socket.create_connection(("127.0.0.1", tcp_port), timeout=5) as tcp:
            tried["tcp"] = tcp.recv(16).decode()
    except OSError as error:
        tried["tcp"] = f"refused: {error.strerror}"
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.settimeout(5)
            udp.sendto(b"where is example.org?", ("127.0.0.1", udp_port))
            tried["udp"] = udp.recv(64).decode()
    except OSError as error:
        tried["udp"] = f"refused: {error.strerror or error}"
    try:
        socket.getaddrinfo("gristmill-test.example.org", 80)
        tried["resolve"] = "resolved"
    except OSError as error:
        tried["resolve"] = f"refused: {error.strerror or error}"
    return tried


_REACH = (
    "import json, sys; sys.path.insert(0, sys.argv[3]); from pipelines import _reach; "
    "print(json.dumps(_reach(int(sys.argv[1]), int(sys.argv[2]))))"
)


def _reacher(name: str, network: bool) -> Task:
    @task(name=name, network=network, uses=["tcp_port", "udp_port"])
    def reach(run: RunContext) -> dict[str, Any]:
        run.log(f"reaching out from process {os.getpid()}")
        with run.stage("reaching"):
            run.progress(1, 2)
            tried = _reach(run.params.tcp_port, run.params.udp_port)
        (run.workdir / "tried.txt").write_text(repr(tried))
        run.output("tried.txt")
        return {**tried, "pid": os.getpid()}

    return reach


def _command_reacher(name: str, network: bool) -> Command:
    here = str(Path(__file__).parent)
    argv = [sys.executable, "-c", _REACH, "{params.tcp_port}", "{params.udp_port}", here]
    return Command(name, argv, stdout_json=True, network=network)


reaching = Pipeline(
    "reaching",
    [
        _reacher("python_online", True),
        _reacher("python_offline", False),
        _command_reacher("command_online", True),
        _command_reacher("command_offline", False),
    ],
    params=ReachParams,
    inputs=OPTIONAL,
)


@task(network=False, timeout=1)
def offline_forever(run: RunContext) -> None:
    """Never ends and never looks whether it should stop."""
    if run.params.control:
        _mark(run, "offline")
    while True:
        time.sleep(0.05)


@task(network=False)
def offline_cancellable(run: RunContext) -> None:
    """Stops when cancelled."""
    _mark(run, "offline")
    while True:
        run.check_cancelled()
        time.sleep(0.01)


@task(network=False)
def offline_failing(run: RunContext) -> None:
    run.log("about to fail")
    raise TaskError(f"the data at {run.workdir} is bad")


@task(network=False)
def offline_crashing(run: RunContext) -> None:
    raise RuntimeError("a bug in the step")


@task(network=False)
def offline_not_json(run: RunContext) -> set[int]:
    return {1}


offline_timeout = Pipeline(
    "offline-timeout", [offline_forever], params=ReachParams, inputs=OPTIONAL
)
offline_cancel = Pipeline(
    "offline-cancel", [offline_cancellable], params=ReachParams, inputs=OPTIONAL
)
offline_command_timeout = Pipeline(
    "offline-command-timeout",
    [Command("sleeper", ["sleep", "60"], timeout=1, network=False)],
    inputs=OPTIONAL,
)
offline_errors = Pipeline("offline-errors", [offline_failing], inputs=OPTIONAL)
offline_crash = Pipeline("offline-crash", [offline_crashing], inputs=OPTIONAL)
offline_json = Pipeline("offline-json", [offline_not_json], inputs=OPTIONAL)


# -- results pages (test_results_pages.py); templates in templates/ beside this module -------


@task(staff_only=("secret",))
def paged_step(run: RunContext) -> dict[str, Any]:
    return {"shown": "for everyone", "secret": "for staff"}


paged = Pipeline(
    "paged", [paged_step], params=Params, inputs=OPTIONAL, page_template="paged/results.html"
)
broken_page = Pipeline(
    "broken-page", [paged_step], params=Params, inputs=OPTIONAL, page_template="paged/broken.html"
)

from gristmill.demo.records import records_check  # noqa: E402, F401  (map steps, filtered runs)
