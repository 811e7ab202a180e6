#!/usr/bin/env python
"""The data checker demo's figures: a big JSON file checked through the whole demo pipeline.

    python bench/demos.py [--items 200000]

Writes ``--items`` items (bench/library_data.py; 200,000 items make about 120 MB of JSON) and
submits them, with the benchmark's schema as the second input (a schema sent by the user), to
the ``data-checker`` demo (gristmill.demo.pipelines), run once by a real ``gristmill worker``
on SQLite. All its steps run: format detection, schema validation, field statistics and the
conversion to XLSX. It prints the validation step's items per second (by wall time: items /
the step's duration) beside a bare loop of the same validator over the same items in this
process (ijson + jsonschema-rs, the faster of a run before and one after), the duration of each
step, and the worker's peak RSS over the whole run (sampled every 0.1 s, children included).
Targets (issue 11): peak RSS ≤ 250 MB whatever the size; items/s ≥ 80 % of the bare loop.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

from library import PeakRss, bare_loop, descendants, peak_rss  # noqa: E402
from library_data import SCHEMA, write_items  # noqa: E402

from bench.run import clean_env, log, start, stop, tail  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--items", type=int, default=200_000)
    args = parser.parse_args()

    from django.db import connections

    from gristmill.app.service import Service
    from gristmill.app.submission import submit, wait
    from gristmill.settings import Settings

    with tempfile.TemporaryDirectory(prefix="gristmill-bench-demos-") as temp:
        work = Path(temp)
        path = write_items(work / "items.json", args.items)
        schema = work / "schema.json"
        schema.write_text(json.dumps(SCHEMA), encoding="utf-8")
        print(f"data checker demo: {args.items:,} items, {path.stat().st_size / 1e6:,.0f} MB")
        counted, before, _ = bare_loop(path)  # also warms the page cache

        env = {
            "GRISTMILL_DATA_DIR": str(work / "data"),
            "GRISTMILL_PIPELINES": "gristmill.demo.pipelines",
            "GRISTMILL_WORKERS": "1",
        }
        service = Service.from_settings(Settings.from_env(env), migrate=True)
        worker_log = work / "worker.log"
        worker = start([sys.executable, "-m", "gristmill", "worker"], clean_env(**env), worker_log)
        try:
            peak = PeakRss(worker.pid)
            peak.start()
            try:
                run_id = submit("data-checker", [path, schema], service=service)
                status = wait(run_id, timeout=3600, service=service)
            finally:
                peak.stop()
            if status.state != "succeeded":
                log(f"the run {status.state}: {status.error}\n{tail(worker_log)}")
                return 1
            rss = max(peak.peak, *(peak_rss(p) for p in [worker.pid, *descendants(worker.pid)]))
        finally:
            stop(worker, grace=15, strays=descendants(worker.pid))
            service.store.close()
            connections.close_all()
        counted, after, _ = bare_loop(path)

    validated = next(step for step in status.steps if step.name == "ValidateSchema")
    result = validated.result
    assert result["items"] == counted, (result["items"], counted)
    seconds = float(validated.duration or 0)
    bare = min(before, after)
    print(f"  {'':<36}{'items/s':>12}")
    print(f"  {'ValidateSchema in the demo':<36}{counted / seconds:>12,.0f}")
    print(f"  {'bare loop (ijson + jsonschema-rs)':<36}{counted / bare:>12,.0f}")
    print(f"  demo / bare loop: {100 * bare / seconds:.0f} % (target ≥ 80 %)")
    print(f"  worker peak RSS over the whole run: {rss / 1e6:,.0f} MB (target ≤ 250 MB)")
    for step in status.steps:
        print(f"  step {step.name:<20} {step.state.value:<10} {float(step.duration or 0):7.1f} s")
    print(f"  {result['invalid_items']:,} invalid items, {result['errors']:,} errors")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
