"""The gristmill command, run as users run it."""

from __future__ import annotations

import os
import subprocess
import sys
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
