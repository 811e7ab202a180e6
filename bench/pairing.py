#!/usr/bin/env python
"""Pairing a map step's items with the ancestor's by key (``pair_with_ancestor``) beside the
same map step unpaired, in one run: N items a side, run inline on a MemoryStore.

    python bench/pairing.py [--items 200000] [--partitions 64]

Both runs check the same JSON Lines file with a trivial item function (a finding for 1% of
the items). "plain" is an unpaired map step over it (the baseline: the file is cut into batches
by byte ranges); "paired" pairs each item with the ancestor run's item of the same id, the
ancestor being a run of the same file with 2% of the items changed: both runs' items are
streamed into hash partitions, paired one partition at a time and written as batches. Each is
measured in a child process of this script (its own peak memory, ``ru_maxrss``), from the
submission to the end of the run (the ancestor's own run is not counted).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def write(path: Path, count: int, changed: int) -> None:
    with path.open("w", encoding="utf-8") as out:
        for n in range(1, count + 1):
            value = n * 2 if changed and n % changed == 0 else n
            out.write(json.dumps({"id": f"item-{n:08d}", "value": value, "flag": n % 100 == 0}))
            out.write("\n")


def measure(kind: str, items: int, partitions: int, data: Path) -> dict[str, Any]:
    from gristmill import Inputs, Pipeline, RunContext, map_step
    from gristmill import items as readers
    from gristmill.app.service import Service
    from gristmill.app.submission import get_run, submit
    from gristmill.executors.inline import run_inline

    @map_step(items=readers.json_lines(), name="check")
    def plain(item: Any, run: RunContext) -> Any:
        return {"kind": "flag"} if item["flag"] else None

    @map_step(
        items=readers.json_lines(),
        name="check",
        pair_with_ancestor="id",
        pair_partitions=partitions,
    )
    def paired(current: Any, earlier: Any, run: RunContext) -> Any:
        if run.ancestor is None:  # the ancestor's own run: nothing to compare with
            return None
        if current is None or earlier is None or current != earlier:
            return {"kind": "changed"}
        return None

    step = paired if kind == "paired" else plain
    service = Service.in_memory([Pipeline("bench", [step], inputs=Inputs())], data / kind)
    ancestor = None
    if kind == "paired":
        ancestor = submit("bench", [data / "earlier.jsonl"], service=service)
        run_inline(service, ancestor)
    started = time.perf_counter()
    run_id = submit("bench", [data / "items.jsonl"], ancestor=ancestor, service=service)
    state = run_inline(service, run_id)
    seconds = time.perf_counter() - started
    result = get_run(run_id, service=service).result("check")
    assert state == "succeeded", state
    return {
        "kind": kind,
        "seconds": seconds,
        "items_per_second": items / seconds,
        "counts": result["counts"],
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--partitions", type=int, default=64)
    parser.add_argument("--one", choices=["plain", "paired"])
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.items, args.partitions, Path(args.data))))
        return
    with tempfile.TemporaryDirectory(prefix="gristmill-pairing-") as directory:
        data = Path(directory)
        write(data / "items.jsonl", args.items, changed=50)
        write(data / "earlier.jsonl", args.items, changed=0)
        figures = {}
        for kind in ("plain", "paired"):
            done = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--one",
                    kind,
                    "--items",
                    str(args.items),
                    "--partitions",
                    str(args.partitions),
                    "--data",
                    str(data),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            figures[kind] = json.loads(done.stdout.strip().splitlines()[-1])
    for kind, got in figures.items():
        print(
            f"{kind:7} {args.items:>9,} items  {got['seconds']:7.2f} s  "
            f"{got['items_per_second']:>9,.0f} items/s  peak {got['peak_rss_mib']:6.1f} MiB  "
            f"{got['counts']}"
        )
    ratio = figures["paired"]["seconds"] / figures["plain"]["seconds"]
    print(f"paired / plain wall time: {ratio:.2f}x")


if __name__ == "__main__":
    main()
