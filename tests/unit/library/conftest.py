"""Running one library task on one file, in this process, without a store."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from gristmill import InputFile, RunContext, Task

pytest.importorskip("ijson", reason="the library tests need the library extra")
pytest.importorskip("openpyxl", reason="the library tests need the library extra")

Runner = Callable[..., tuple[Any, RunContext]]


def context(path: Path, workdir: Path, params: Any = None) -> RunContext:
    item = InputFile(
        name=path.name,
        path=path,
        size=path.stat().st_size,
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        media_type="application/octet-stream",
    )
    return RunContext(
        run_id="test",
        pipeline="library",
        step="step",
        inputs=(item,),
        params=params,
        workdir=workdir,
        upstream={},
    )


@pytest.fixture
def run_task(tmp_path: Path) -> Runner:
    """Run ``task`` on the file ``path``; return its result and the context it saw."""

    def run(task: Task, path: Path, params: Any = None) -> tuple[Any, RunContext]:
        workdir = tmp_path / "work"
        workdir.mkdir(exist_ok=True)
        run = context(path, workdir, params)
        return task.process(run, {}), run

    return run
