"""``gristmill pipelines list|show|export|check|import``, run as users run them."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from click.testing import CliRunner

from gristmill.authoring.registry import load_spec
from gristmill.authoring.yamlimport import load_file
from gristmill.cli.main import main

LINES = """
name: lines
title: Lines
steps:
  - name: count
    command: [wc, -l, "{input}"]
"""


def gristmill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gristmill pipelines ARGS`` in this process (quick), in ``cwd``, without GRISTMILL_*."""
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GRISTMILL_")}
    with contextlib.chdir(cwd):
        result = CliRunner().invoke(main, ["pipelines", *args], env=unset | {"COLUMNS": "200"})
    return subprocess.CompletedProcess(args, result.exit_code, result.stdout, result.stderr)


def test_the_command_is_offered_by_the_gristmill_program(tmp_path: Path) -> None:
    write(tmp_path / "tools.yaml", LINES)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    done = subprocess.run(
        [sys.executable, "-m", "gristmill", "pipelines", "check", "tools.yaml"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (done.returncode, done.stdout) == (0, "tools.yaml: ok, 1 pipeline(s): lines\n")


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return path


def test_list_shows_the_configured_pipelines_and_which_can_be_exported(tmp_path: Path) -> None:
    tools = write(tmp_path / "tools.yaml", LINES)
    done = gristmill(
        "list", "--pipelines", "gristmill.demo.pipelines", "--pipelines", str(tools), cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    rows = {line.split("│")[1].strip(): line for line in done.stdout.splitlines() if "│" in line}
    assert "no: Python steps" in rows["wordcount"]
    assert rows["data-checker"].rstrip("│ ").endswith("yes")
    assert "Lines" in rows["lines"] and rows["lines"].rstrip("│ ").endswith("yes")


def test_show_prints_a_pipelines_steps_and_settings(tmp_path: Path) -> None:
    done = gristmill("show", "command-line-tools", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "command-line-tools: Command-line tools"
    assert "access anyone, queue default, priority 0, runs kept 7d" in lines
    assert "param top: int, default 5" in lines
    assert "5. top_paths: command head -n {params.top} -- {outputs.rank_paths}" in lines
    as_json = json.loads(gristmill("show", "data-checker", "--json", cwd=tmp_path).stdout)
    assert as_json["name"] == "data-checker"


def test_export_writes_a_file_that_imports_as_the_same_pipelines(tmp_path: Path) -> None:
    done = gristmill(
        "export", "data-checker", "command-line-tools", "-o", "demo.yaml", cwd=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "wrote 2 pipeline(s) to demo.yaml" in done.stderr
    demo = {p.name: p for p in load_spec("gristmill.demo.pipelines")}
    for imported in load_file(tmp_path / "demo.yaml"):
        assert imported.describe() == demo[imported.name].describe()


def test_export_marks_python_steps_and_warns_about_them(tmp_path: Path) -> None:
    done = gristmill("export", "json-check", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "- name: parse_json\n  python: gristmill.demo.pipelines.parse_json\n" in done.stdout
    assert (
        "warning: not exported: step `parse_json` is Python code "
        "(gristmill.demo.pipelines.parse_json)"
    ) in done.stderr.splitlines()
    (tmp_path / "json-check.yaml").write_text(done.stdout)
    refused = gristmill("check", "json-check.yaml", cwd=tmp_path)
    assert refused.returncode == 1
    line = done.stdout.splitlines().index("- name: parse_json") + 1
    assert refused.stderr.splitlines()[0] == (
        f"error: json-check.yaml, line {line}, column 3: steps.0: step `parse_json` is Python code "
        "(gristmill.demo.pipelines.parse_json), which a YAML pipeline cannot hold; keep this "
        "pipeline in Python, or replace the step with a command or a library task"
    )


def test_export_needs_names_or_all_and_known_pipelines(tmp_path: Path) -> None:
    nothing = gristmill("export", cwd=tmp_path)
    assert nothing.returncode == 2
    assert "name the pipelines to export, or give --all" in nothing.stderr
    unknown = gristmill("export", "nope", cwd=tmp_path)
    assert unknown.returncode == 2
    assert unknown.stderr.strip() == "error: no pipeline named 'nope'"


def test_check_says_ok_or_prints_each_mistake_with_its_line(tmp_path: Path) -> None:
    write(tmp_path / "good.yaml", LINES)
    write(tmp_path / "bad.yaml", "name: bad\nsteps:\n  - name: count\n    command: wc -l\n")
    good = gristmill("check", "good.yaml", cwd=tmp_path)
    assert (good.returncode, good.stdout) == (0, "good.yaml: ok, 1 pipeline(s): lines\n")
    bad = gristmill("check", "good.yaml", "bad.yaml", cwd=tmp_path)
    assert bad.returncode == 1
    assert bad.stderr == (
        "error: bad.yaml, line 4, column 14: steps.0.command: must be the argv template as a "
        'list of arguments, e.g. [wc, -l, "{input}"] (never a shell string)\n'
    )


def test_import_copies_a_valid_file_into_the_folder(tmp_path: Path) -> None:
    source = write(tmp_path / "new" / "tools.yaml", LINES)
    done = gristmill("import", str(source), "--into", "pipelines", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "imported 1 pipeline(s) into pipelines/tools.yaml: lines",
        "offer them with --pipelines pipelines/tools.yaml (or add it to GRISTMILL_PIPELINES)",
    ]
    assert (tmp_path / "pipelines" / "tools.yaml").read_text() == source.read_text()
    again = gristmill("import", str(source), "--into", "pipelines", cwd=tmp_path)
    assert again.returncode == 1
    assert again.stderr.strip() == "error: pipelines/tools.yaml exists; give --force to replace it"
    assert (
        gristmill("import", str(source), "--into", "pipelines", "--force", cwd=tmp_path).returncode
        == 0
    )


def test_import_refuses_a_name_already_in_the_folder_and_copies_nothing(tmp_path: Path) -> None:
    write(tmp_path / "pipelines" / "old.yaml", LINES)
    source = write(tmp_path / "other.yaml", LINES)
    done = gristmill("import", str(source), "--into", "pipelines", cwd=tmp_path)
    assert done.returncode == 1
    assert done.stderr.strip() == "error: pipeline 'lines' is already in pipelines/old.yaml"
    assert sorted(p.name for p in (tmp_path / "pipelines").iterdir()) == ["old.yaml"]


def test_import_reads_relative_schemas_from_the_folder_it_copies_into(tmp_path: Path) -> None:
    write(
        tmp_path / "drafts" / "checks.yaml",
        "name: checks\nsteps:\n  - task: ValidateSchema\n    schema: item.json\n",
    )
    source = "drafts/checks.yaml"
    (tmp_path / "drafts" / "item.json").write_text('{"type": "object"}')
    missing = gristmill("import", source, "--into", "pipelines", cwd=tmp_path)
    assert missing.returncode == 1
    assert missing.stderr == (
        "error: drafts/checks.yaml, line 4, column 13: steps.0.schema: the file 'item.json' "
        "does not exist (paths are relative to the pipeline file)\n"
    )
    assert not (tmp_path / "pipelines" / "checks.yaml").exists()
    (tmp_path / "pipelines").mkdir(exist_ok=True)
    (tmp_path / "pipelines" / "item.json").write_text('{"type": "object"}')
    assert gristmill("import", source, "--into", "pipelines", cwd=tmp_path).returncode == 0


def test_a_command_given_a_file_with_mistakes_prints_each_and_exits_2(tmp_path: Path) -> None:
    write(
        tmp_path / "bad.yaml",
        "name: bad\naccess: all\nsteps:\n  - name: count\n    command: [wc]\n    timeout: -1\n",
    )
    unset: dict[str, str | None] = {k: None for k in os.environ if k.startswith("GRISTMILL_")}
    with contextlib.chdir(tmp_path):
        result = CliRunner().invoke(
            main, ["run", "bad.yaml", "in.txt", "--data-dir", "data"], env=unset
        )
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: bad.yaml, line 2, column 9: access: must be one of: anyone, signed-in, staff, "
        "superuser",
        "error: bad.yaml, line 6, column 14: steps.0.timeout: must be a number of seconds",
    ]
