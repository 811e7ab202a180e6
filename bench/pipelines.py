"""The gristmill pipelines the benchmark runs: trivial steps, no inputs.

``bench-1`` is one function step returning a small dict; ``bench-10`` is ten of them in a row.
``bench-gate`` holds its worker until a file appears (``db_outage.py``).
Loaded by file path (``GRISTMILL_PIPELINES=/abs/path/bench/pipelines.py``), as users do.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gristmill import Inputs, Pipeline, RunContext, Task, TaskError, task

NO_INPUTS = Inputs(min_count=0)


@task(name="only")
def only(run: RunContext) -> dict[str, Any]:
    return {"ok": True, "n": 1}


def _trivial(position: int) -> Task:
    def step(run: RunContext) -> dict[str, Any]:
        return {"ok": True, "n": position}

    return task(name=f"s{position}")(step)


bench_1 = Pipeline("bench-1", [only], inputs=NO_INPUTS)
bench_10 = Pipeline("bench-10", [_trivial(i) for i in range(1, 11)], inputs=NO_INPUTS)


@task(uses=())
def measure_file(run: RunContext) -> dict[str, int]:
    """Read the uploaded file: a small real step for the HTTP benchmark."""
    return {"bytes": len(run.input.path.read_bytes())}


bench_file = Pipeline("bench-file", [measure_file], inputs=Inputs(kinds=["file"]))


class GateParams(BaseModel):
    gate: str
    """The step ends once this file exists; it creates ``<gate>.waiting`` when it starts."""


@task(name="gate")
def wait_at_gate(run: RunContext) -> dict[str, bool]:
    gate = Path(run.params.gate)
    gate.with_name(gate.name + ".waiting").touch()
    deadline = time.monotonic() + 120
    while not gate.exists():
        run.check_cancelled()
        if time.monotonic() > deadline:
            raise TaskError("the gate never opened")
        time.sleep(0.005)
    return {"ok": True}


bench_gate = Pipeline("bench-gate", [wait_at_gate], params=GateParams, inputs=NO_INPUTS)


bench_url = Pipeline("bench-url", [measure_file], inputs=Inputs(kinds=["url"]))
"""A URL input (``bench/slow_clients.py``); its step reads the fetched file like ``bench-file``."""
