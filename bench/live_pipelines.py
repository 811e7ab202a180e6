"""The pipeline ``bench/cancel_live.py`` runs: one step that reports progress every millisecond
and stops when cancelled.

Its progress ``done`` is the wall-clock time of the report in milliseconds, so whoever reads
the run sees how old the progress it is shown is. When it notices a cancel it writes the time
to ``<control>/<run id>.stopped`` before it stops.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import BaseModel

from gristmill import CancelledError, Inputs, Pipeline, RunContext, task


class LiveParams(BaseModel):
    control: str
    seconds: float = 5.0


@task(name="report")
def report(run: RunContext) -> int:
    ends = time.monotonic() + run.params.seconds
    reports = 0
    try:
        while time.monotonic() < ends:
            run.progress(int(time.time() * 1000))
            reports += 1
            run.check_cancelled()
            time.sleep(0.001)
    except CancelledError:
        (Path(run.params.control) / f"{run.run_id}.stopped").write_text(repr(time.time()))
        raise
    return reports


live = Pipeline("bench-live", [report], params=LiveParams, inputs=Inputs(min_count=0))
