"""A pipeline the S3 end-to-end tests submit: big files copied through a step in chunks."""

from __future__ import annotations

import shutil
from typing import Any

from gristmill import Inputs, Pipeline, RunContext, task


@task
def copy(run: RunContext) -> dict[str, Any]:
    """Copy the input to an output, a chunk at a time."""
    out = run.workdir / "copy.bin"
    with run.input.path.open("rb") as source, out.open("wb") as target:
        shutil.copyfileobj(source, target, 1 << 20)
    run.output(out, media_type="application/octet-stream")
    return {"size": out.stat().st_size}


copying = Pipeline("copying", [copy], inputs=Inputs(kinds=["file"], max_size=64 << 20))
