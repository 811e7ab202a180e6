"""The gristmill command, run as users run it."""

from __future__ import annotations

import os
import pty
import re
import select
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "textstats.py"
POEM = ROOT / "examples" / "data" / "poem.txt"


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    return subprocess.run(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_run_runs_the_example_and_prints_results_and_outputs(tmp_path: Path) -> None:
    done = gristmill("run", str(EXAMPLE), str(POEM), "--param", "min_length=7", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "LongWords" in done.stdout and "count=3" in done.stdout
    output = next(line for line in done.stdout.splitlines() if "output sorted.txt:" in line)
    sorted_path = Path(output.split("output sorted.txt:", 1)[1].strip())
    assert sorted_path.read_text().splitlines() == sorted(POEM.read_text().splitlines())
    assert (tmp_path / "gristmill-data" / "gristmill.sqlite3").exists()


def test_run_exits_1_with_the_message_when_the_run_fails(tmp_path: Path) -> None:
    binary = tmp_path / "not-text.txt"
    binary.write_bytes(b"\xff\xfe\x00 not utf-8")
    done = gristmill("run", str(EXAMPLE), str(binary), cwd=tmp_path)
    assert done.returncode == 1
    assert "error: not-text.txt is not UTF-8 text" in done.stderr


ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def in_a_terminal(*args: str, cwd: Path) -> tuple[int, list[str]]:
    """Run gristmill with a pseudo-terminal as its stdout and stderr, as an author runs it (so
    the live display is drawn); return its exit status and the lines as they end up shown."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    env |= {"TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    main, terminal = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "gristmill", *args],
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=terminal,
        stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([main], [], [], deadline - time.monotonic())
            if not ready:
                break
            try:
                chunk = os.read(main, 65536)
            except OSError:  # the terminal's last writer exited
                break
            if not chunk:
                break
            shown += chunk
    finally:
        os.close(main)
        process.kill()
        code = process.wait(timeout=30)
    text = ANSI.sub("", shown.decode("utf-8", "replace"))
    # A carriage return starts the line again: what follows the last one is what stays shown.
    return code, [line.rsplit("\r", 1)[-1] for line in text.replace("\r\n", "\n").split("\n")]


def test_run_shows_an_internal_errors_traceback_whole_above_the_live_display(
    tmp_path: Path,
) -> None:
    buggy = tmp_path / "buggy.py"
    buggy.write_text(
        "from gristmill import Pipeline, task\n\n\n"
        "@task\n"
        "def divide(run):\n"
        "    total = 0\n"
        "    return {'mean': 1 / total}\n\n\n"
        "pipeline = Pipeline('buggy', [divide])\n"
    )
    code, lines = in_a_terminal("run", str(buggy), str(POEM), cwd=tmp_path)
    assert code == 1
    start = next(i for i, line in enumerate(lines) if "Traceback" in line)
    assert lines[start - 1].startswith("ERROR gristmill.engine: step divide of run ")
    assert lines[start] == "Traceback (most recent call last):"
    frame = lines.index(f'  File "{buggy}", line 7, in divide', start)
    assert lines[frame + 1] == "    return {'mean': 1 / total}"
    assert "ZeroDivisionError: division by zero" in lines[frame + 2 : frame + 4]
    assert lines[-2].startswith("error: internal error, reference ")


def test_run_exits_2_naming_a_bad_parameter(tmp_path: Path) -> None:
    done = gristmill("run", str(EXAMPLE), str(POEM), "-p", "min_length=0", cwd=tmp_path)
    assert done.returncode == 2
    assert "error: params.min_length: Input should be greater than or equal to 1" in done.stderr


def test_run_exits_2_for_a_missing_input_file(tmp_path: Path) -> None:
    done = gristmill("run", str(EXAMPLE), "missing.txt", cwd=tmp_path)
    assert done.returncode == 2
    assert "error: inputs: missing.txt: no such file or directory" in done.stderr


def test_run_exits_2_for_a_pipeline_file_with_a_definition_error(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("from gristmill import Pipeline\nPipeline('Bad Name', [])\n")
    done = gristmill("run", str(broken), str(POEM), cwd=tmp_path)
    assert done.returncode == 2
    assert "error: pipeline name 'Bad Name' must be 1-64 lower-case letters" in done.stderr


MAP_PIPELINE = """
from gristmill import Pipeline, Reservoir, items, map_step, task


@map_step(items=items.json_lines(), batch_size=100)
def check(item, run):
    return {"kind": "even"} if item["n"] % 2 == 0 else None


@task
def tally(run):
    sample = Reservoir(k=5, seed=1)
    for number, finding in run.findings("check"):
        sample.add(finding["kind"], number)
    return {"counts": run.map_summary("check")["counts"], "examples": len(sample.examples("even"))}


pipeline = Pipeline("tally", [check, tally])
"""


def test_run_runs_a_map_step_and_its_batches_in_this_process(tmp_path: Path) -> None:
    (tmp_path / "tally.py").write_text(MAP_PIPELINE)
    (tmp_path / "data.jsonl").write_text("".join(f'{{"n": {n}}}\n' for n in range(1, 1001)))
    done = gristmill("run", "tally.py", "data.jsonl", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "counts={'even': 500}, examples=5" in done.stdout


def test_run_of_a_map_step_shows_its_items_and_findings(tmp_path: Path) -> None:
    data = tmp_path / "items.jsonl"
    data.write_text("".join(f'{{"n": {n}}}\n' for n in range(1, 2001)))
    pipelines = ROOT / "tests" / "integration" / "pipelines.py"
    done = gristmill("run", f"{pipelines}:mapping", str(data), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith("✔ check succeeded"))
    assert lines[at + 2 : at + 4] == [
        "    items 2,000 of 2,000, batches 4 of 4",
        "    findings: seven 285, fifty 35, round 35",
    ]
