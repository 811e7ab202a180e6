"""Pipelines the end-to-end tests submit over HTTP."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from gristmill import Inputs, Pipeline, RunContext, items, map_step, task


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


class MillParams(BaseModel):
    rounds: int = 40
    """SHA-256 rounds per item: work that makes each batch take a moment (never a sleep)."""
    control: str = ""
    hold: int = 0
    """The item whose batch waits until control/release exists (0: none)."""


@map_step(items=items.json_lines(), batch_size=200, name="mill")
def mill_item(item: Any, run: RunContext) -> Any:
    """Hash each item ``rounds`` times; a finding for items whose digest starts with a 0 digit
    and for every multiple of 100."""
    params = run.params
    if item["n"] == params.hold and params.control:
        control = Path(params.control)
        while not (control / "release").exists():
            run.check_cancelled()
            time.sleep(0.01)  # waiting for the test, not synchronising with it
    digest = json.dumps(item).encode()
    for _ in range(params.rounds):
        digest = hashlib.sha256(digest).digest()
    found = []
    if digest.hex()[0] == "0":
        found.append({"kind": "zero", "n": item["n"]})
    if item["n"] % 100 == 0:
        found.append({"kind": "hundred", "n": item["n"]})
    return found or None


@task
def report(run: RunContext) -> dict[str, Any]:
    """The reduce: the map's summary."""
    summary = run.map_summary("mill")
    return {"items": summary["items_done"], "counts": summary["counts"]}


milling = Pipeline("milling", [mill_item, report], params=MillParams)
