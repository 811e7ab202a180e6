"""Pipelines the end-to-end tests submit over HTTP."""

from __future__ import annotations

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
