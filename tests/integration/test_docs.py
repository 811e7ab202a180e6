"""The documentation's examples run as written.

A fenced code block whose info string is ``sh runnable`` or ``python runnable`` is run: the
blocks of one document in order, in one fresh directory, which holds a link to the checkout's
``examples/``. Shell blocks run with ``bash -e``, Python blocks with this interpreter, each
under a time limit. ``file=NAME`` in the info string also saves the block as ``NAME`` there
first, for later blocks to use (``python runnable file=csvstats.py``); a block in another
language with ``file=`` is only saved (``yaml runnable file=tools.yaml``).

Mark only blocks that run offline and quickly: never one that starts a server or a worker.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
TIME_LIMIT = 90

FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})(?P<info>.*)$")


@dataclass(frozen=True)
class Block:
    """One runnable code block of a document."""

    language: str
    code: str
    line: int
    file: str | None


def runnable_blocks(text: str) -> list[Block]:
    """The runnable blocks of a Markdown text, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        opening = FENCE.match(lines[number].strip())
        number += 1
        if not opening:
            continue
        fence, words = opening["fence"], opening["info"].split()
        body: list[str] = []
        while number < len(lines) and not lines[number].strip().startswith(fence):
            body.append(lines[number])
            number += 1
        number += 1  # the closing fence
        if len(words) >= 2 and words[1] == "runnable":
            options = dict(word.split("=", 1) for word in words[2:] if "=" in word)
            code = "\n".join(body) + "\n"
            start = number - len(body) - 1
            blocks.append(Block(words[0], code, start, options.get("file")))
    return blocks


def _run(block: Block, directory: Path) -> subprocess.CompletedProcess[str]:
    if block.file:
        target = directory / block.file
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.code, encoding="utf-8")
    if block.language in ("sh", "bash", "shell"):
        command = ["bash", "-e", "-c", block.code]
    elif block.file and block.language != "python":
        return subprocess.CompletedProcess([block.file], 0, "", "")  # saved for later blocks
    elif block.language == "python":
        command = [sys.executable, "-c", block.code]
    else:
        raise AssertionError(f"line {block.line}: cannot run a {block.language!r} block")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    # The commands the documents name (gristmill, python) are this interpreter's.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return subprocess.run(
        command,
        cwd=directory,
        env=env,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=TIME_LIMIT,
    )


def test_runnable_blocks_are_found_with_their_language_line_and_file() -> None:
    text = (
        "intro\n"
        "```python runnable file=a.py\nx = 1\n```\n"
        "```sh\nnot marked\n```\n"
        "````sh runnable\necho '```'\n````\n"
    )
    assert runnable_blocks(text) == [
        Block("python", "x = 1\n", 2, "a.py"),
        Block("sh", "echo '```'\n", 8, None),
    ]


def test_the_guides_have_runnable_examples() -> None:
    marked = {path.name for path in DOCUMENTS if runnable_blocks(path.read_text("utf-8"))}
    assert {"README.md", "pipelines.md"} <= marked


@pytest.mark.slow
@pytest.mark.parametrize(
    "document",
    [path for path in DOCUMENTS if runnable_blocks(path.read_text("utf-8"))],
    ids=lambda path: path.relative_to(ROOT).as_posix(),
)
def test_the_runnable_examples_of_a_document_run(document: Path, tmp_path: Path) -> None:
    (tmp_path / "examples").symlink_to(ROOT / "examples", target_is_directory=True)
    for block in runnable_blocks(document.read_text("utf-8")):
        done = _run(block, tmp_path)
        assert done.returncode == 0, (
            f"{document.name} line {block.line}: the {block.language} block exited with "
            f"{done.returncode}\n--- stdout\n{done.stdout}--- stderr\n{done.stderr}"
        )
