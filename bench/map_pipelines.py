"""The pipeline ``bench/map_items.py`` runs: a trivial check of each item of a JSON Lines file
(a finding for 1% of them, every finding stored) and a reduce with counts by kind and 5 random
examples per kind."""

from __future__ import annotations

from typing import Any

from gristmill import Inputs, Pipeline, Reservoir, RunContext, items, map_step, task


def check_item(item: Any) -> Any:
    """The per-item check, shared with the multiprocessing floor."""
    number = item["id"]
    if number % 100 == 0:
        return {"kind": f"kind-{number % 3}", "id": number, "value": item["value"]}
    return None


@map_step(items=items.json_lines(), batch_size=1000, on_failure="continue")
def check(item: Any, run: RunContext) -> Any:
    return check_item(item)


@task
def reduce(run: RunContext) -> dict[str, Any]:
    examples = Reservoir(k=5, seed=1)
    counts: dict[str, int] = {}
    for _, finding in run.findings("check"):
        counts[finding["kind"]] = counts.get(finding["kind"], 0) + 1
        examples.add(finding["kind"], finding)
    return {"counts": counts, "examples": examples.as_dict()}


bench_map = Pipeline("bench-map", [check, reduce], inputs=Inputs(min_count=1))
