"""Pipelines the end-to-end tests submit over HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

from gristmill import Inputs, Pipeline, RunContext, task


@task
def shout(run: RunContext) -> dict[str, Any]:
    text = run.input.path.read_text(encoding="utf-8")
    out = run.workdir / "shouted.txt"
    out.write_text(text.upper(), encoding="utf-8")
    run.output(out, media_type="text/plain")
    run.log(f"shouted {len(text)} characters")
    return {"characters": len(text)}


upper = Pipeline(
    "upper", [shout], inputs=Inputs(kinds=["file", "text"], extensions=["txt"], max_size=1024)
)


@task
def digest(run: RunContext) -> dict[str, Any]:
    """Hash the input as the worker sees it and hand back a copy of it with a summary."""
    data = run.input.path.read_bytes()
    copy = run.workdir / "copy.bin"
    copy.write_bytes(data)
    run.output(copy, media_type="application/octet-stream")
    summary = run.workdir / "summary.txt"
    summary.write_text(f"{len(data)} {hashlib.sha256(data).hexdigest()}\n", encoding="utf-8")
    run.output(summary, media_type="text/plain")
    return {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}


checksum = Pipeline("checksum", [digest], inputs=Inputs(kinds=["file"], max_size=4 << 20))
