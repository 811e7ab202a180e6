"""The records demo (a Pelican-class data-quality check): a dataset of contracting-process-like
records, one JSON object per line, checked field by field in batches; a dataset-level report
with pass rates, distributions and a few random examples of each problem; and, when the run
has an ancestor (the previous run of the same source), what changed since.

The example datasets are in ``gristmill/demo/data/`` (``records.jsonl`` and, a month later,
``later/records.jsonl``); ``python -m gristmill.demo.generate`` writes bigger ones.
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Mapping
from importlib import resources
from typing import Any

import gristmill
from gristmill import Inputs, Pipeline, Reservoir, RunContext, Task, items, map_step

DATE = re.compile(r"\d{4}-\d{2}-\d{2}\Z")

CHECKS = {
    "missing-field": "required fields are present",
    "bad-date": "dates are YYYY-MM-DD",
    "dates-out-of-order": "tender start ≤ tender end ≤ date",
    "negative-amount": "amounts are not negative",
    "unknown-currency": "currencies are in the codelist",
    "unknown-status": "statuses are in the codelist",
}
"""Each check, by the kind of finding an item that fails it gets."""

REQUIRED = ("ocid", "date", "buyer.id", "buyer.name", "value.amount", "value.currency", "status")

SEED = 2026
"""The seed of the report's random examples: the same examples for the same findings."""


@gristmill.reference("records demo codelists", ttl=3600)
def codelists() -> dict[str, frozenset[str]]:
    """The codelists the records are checked against (loaded once per worker process)."""
    text = resources.files("gristmill.demo").joinpath("data/codelists.json").read_text("utf-8")
    return {name: frozenset(codes) for name, codes in json.loads(text).items()}


def _get(item: Any, path: str) -> Any:
    for part in path.split("."):
        if not isinstance(item, dict):
            return None
        item = item.get(part)
    return item


def problems(item: Any) -> list[dict[str, Any]]:
    """The findings of one record: one per check it fails."""
    if not isinstance(item, dict):
        return [{"kind": "missing-field", "ocid": None, "fields": ["(not an object)"]}]
    ocid = item.get("ocid")
    found: list[dict[str, Any]] = []
    missing = [path for path in REQUIRED if _get(item, path) in (None, "")]
    if missing:
        found.append({"kind": "missing-field", "ocid": ocid, "fields": missing})
    dates = {path: _get(item, path) for path in ("tender.start", "tender.end", "date")}
    bad = {p: d for p, d in dates.items() if d is not None and not DATE.match(str(d))}
    if bad:
        found.append({"kind": "bad-date", "ocid": ocid, "dates": bad})
    ordered = [d for d in dates.values() if isinstance(d, str) and DATE.match(d)]
    if len(ordered) == 3 and ordered != sorted(ordered):
        found.append({"kind": "dates-out-of-order", "ocid": ocid, "dates": dates})
    amount = _get(item, "value.amount")
    if isinstance(amount, int | float) and amount < 0:
        found.append({"kind": "negative-amount", "ocid": ocid, "amount": amount})
    lists = codelists()
    currency = _get(item, "value.currency")
    if currency not in (None, "") and currency not in lists["currency"]:
        found.append({"kind": "unknown-currency", "ocid": ocid, "currency": currency})
    status = item.get("status")
    if status not in (None, "") and status not in lists["status"]:
        found.append({"kind": "unknown-status", "ocid": ocid, "status": status})
    return found


@map_step(
    items=items.json_lines(), batch_size=500, on_failure="continue", title="Check each record"
)
def check_records(item: Any, run: RunContext) -> Any:
    """Check one record field by field."""
    return problems(item)


@map_step(
    items=items.json_lines(),
    batch_size=500,
    on_failure="continue",
    pair_with_ancestor="ocid",
    title="Compare with the previous run",
)
def compare(current: Any, earlier: Any, run: RunContext) -> Any:
    """What changed in one record since the ancestor run (nothing without an ancestor)."""
    if run.ancestor is None:
        return None
    if earlier is None:
        return {"kind": "added", "ocid": current.get("ocid")}
    if current is None:
        return {"kind": "removed", "ocid": earlier.get("ocid")}
    if current == earlier:
        return None
    ocid = current.get("ocid")
    fields = sorted(k for k in current.keys() | earlier.keys() if current.get(k) != earlier.get(k))
    found: list[dict[str, Any]] = [{"kind": "changed", "ocid": ocid, "fields": fields}]
    now = {p["kind"] for p in problems(current)}
    before = {p["kind"] for p in problems(earlier)}
    found += [{"kind": "fixed", "ocid": ocid, "check": c} for c in sorted(before - now)]
    found += [{"kind": "broken", "ocid": ocid, "check": c} for c in sorted(now - before)]
    return found


def _percent(part: int, whole: int) -> float:
    return round(100 * part / whole, 2) if whole else 100.0


class RecordsReport(Task):
    """The dataset-level report: pass rates, distributions, examples and the comparison."""

    title = "Report"
    needs = ["check_records", "compare"]

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        summary = run.map_summary("check_records")
        total = summary["items"]
        examples = Reservoir(k=5, seed=SEED)
        failing_items = 0
        last = 0
        for number, finding in run.findings("check_records"):
            if number != last:
                failing_items, last = failing_items + 1, number
            examples.add(finding["kind"], {"item": number, **finding})
        earlier = self._earlier(run)
        checks = []
        for kind, description in CHECKS.items():
            failed = summary["counts"].get(kind, 0)
            rate = _percent(total - failed, total)
            was = (earlier or {}).get(kind)
            trend = (
                None
                if was is None
                else "better"
                if rate > was
                else "worse"
                if rate < was
                else "same"
            )
            checks.append(
                {
                    "check": kind,
                    "what": description,
                    "failed": failed,
                    "passed": total - failed,
                    "pass_rate": rate,
                    "previous_pass_rate": was,
                    "trend": trend,
                }
            )
        return {
            "items": total,
            "items_failing": failing_items,
            "items_not_checked": summary["items_failed"],
            "checks": checks,
            "examples": {kind: examples.examples(kind) for kind in CHECKS if examples.count(kind)},
            "distributions": self._distributions(run),
            "comparison": self._comparison(run),
        }

    def _earlier(self, run: RunContext) -> dict[str, float] | None:
        """The pass rates of the ancestor's report, by check (None without an ancestor)."""
        if run.ancestor is None:
            return None
        report = run.ancestor.results.get("RecordsReport") or {}
        return {check["check"]: check["pass_rate"] for check in report.get("checks", [])}

    def _distributions(self, run: RunContext) -> dict[str, Any]:
        """Statuses, currencies and amounts over the dataset, read in one streamed pass."""
        statuses: Counter[str] = Counter()
        currencies: Counter[str] = Counter()
        sample = Reservoir(k=2001, seed=SEED)
        count, smallest, largest, total = 0, math.inf, -math.inf, 0.0
        with run.input.open("rb") as stream:
            for line in stream:
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    continue
                if not isinstance(item, dict):
                    continue
                statuses[str(item.get("status"))] += 1
                currencies[str(_get(item, "value.currency"))] += 1
                amount = _get(item, "value.amount")
                if isinstance(amount, int | float):
                    count += 1
                    smallest, largest, total = (
                        min(smallest, amount),
                        max(largest, amount),
                        total + amount,
                    )
                    sample.add("amount", amount)
        amounts = sorted(sample.examples("amount"))
        quartiles = [amounts[len(amounts) * q // 4] for q in (1, 2, 3)] if amounts else []
        return {
            "status": dict(statuses.most_common()),
            "currency": dict(currencies.most_common()),
            "amount": {
                "count": count,
                "min": smallest if count else None,
                "max": largest if count else None,
                "mean": round(total / count, 2) if count else None,
                "quartiles (sampled)": quartiles,
            },
        }

    def _comparison(self, run: RunContext) -> dict[str, Any] | None:
        if run.ancestor is None:
            return None
        counts = run.map_summary("compare")["counts"]
        examples = Reservoir(k=5, seed=SEED)
        for _, finding in run.findings("compare"):
            examples.add(finding["kind"], finding)
        kinds = ("added", "removed", "changed", "fixed", "broken")
        return {
            "ancestor": run.ancestor.id,
            "counts": {kind: counts.get(kind, 0) for kind in kinds},
            "examples": {kind: examples.examples(kind) for kind in kinds if examples.count(kind)},
        }

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        rows = [
            {
                "check": c["what"],
                "failed": c["failed"],
                "pass rate": f"{c['pass_rate']}%",
                "previous run": ""
                if c["previous_pass_rate"] is None
                else f"{c['previous_pass_rate']}%",
                "trend": c["trend"] or "",
            }
            for c in result["checks"]
        ]
        examples = [
            {"problem": kind, "item": e["item"], "ocid": e.get("ocid") or "", "detail": _detail(e)}
            for kind, kept in result["examples"].items()
            for e in kept
        ]
        page: dict[str, Any] = {
            "summary": (
                f"{result['items']} records checked; {result['items_failing']} fail at least "
                "one check"
            ),
            "checks": rows,
            "examples (5 random of each problem)": examples,
        }
        comparison = result.get("comparison")
        if comparison is None:
            page["comparison with the previous run"] = (
                "no previous run of this source to compare with"
            )
        else:
            counts = comparison["counts"]
            page["comparison with the previous run"] = (
                f"since run {comparison['ancestor']}: {counts['added']} added, "
                f"{counts['removed']} removed, {counts['changed']} changed; "
                f"{counts['fixed']} problems fixed, {counts['broken']} new problems"
            )
            page["changes (examples)"] = [
                {"change": kind, "ocid": e.get("ocid") or "", "detail": _detail(e)}
                for kind, kept in comparison["examples"].items()
                for e in kept
            ]
        amount = result["distributions"]["amount"]
        page["distributions"] = {
            "status": result["distributions"]["status"],
            "currency": result["distributions"]["currency"],
            "amount": f"min {amount['min']}, mean {amount['mean']}, max {amount['max']}",
        }
        return page


def _detail(finding: Mapping[str, Any]) -> str:
    rest = {k: v for k, v in finding.items() if k not in ("kind", "ocid", "item")}
    return json.dumps(rest, ensure_ascii=False)


records_check = Pipeline(
    "records-check",
    [check_records, compare, RecordsReport],
    title="Records check",
    description=(
        "Checks a JSON Lines dataset of contracting records field by field in batches, reports "
        "pass rates with examples, and compares with the previous run of the same source."
    ),
    inputs=Inputs(
        kinds=["file", "url", "datafile", "items"], extensions=["jsonl"], max_size=2 << 30
    ),
    ancestor="previous",
)
