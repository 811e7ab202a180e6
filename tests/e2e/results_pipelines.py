"""Pipelines with results pages of their own, and a big result shown by the default rendering
(tests/e2e/test_results_pages.py)."""

from __future__ import annotations

from typing import Any

from gristmill import Inputs, Pipeline, RunContext, task

OPTIONAL = Inputs(min_count=0)


@task(template="checker/errors.html", staff_only=("server_note",))
def validate(run: RunContext) -> dict[str, Any]:
    """Errors grouped by kind, as a validator reports them."""
    groups = [
        {
            "kind": "type",
            "message": "is not of type 'string'",
            "count": 4812,
            "examples": [{"item": i, "path": f"/items/{i}/id"} for i in range(3)],
        },
        {
            "kind": "required",
            "message": "'title' is a required property",
            "count": 2,
            "examples": [{"item": 7, "path": "/items/7"}],
        },
    ]
    return {"valid": False, "errors": groups, "server_note": "seen by staff only"}


@task(template="beside/stats.html")
def stats(run: RunContext) -> dict[str, int]:
    return {"items": 5000, "fields": 12}


checker = Pipeline(
    "checker",
    [validate, stats],
    title="Data checker",
    inputs=OPTIONAL,
    templates="page_templates",
    page_template="checker/results.html",
)


@task
def big(run: RunContext) -> dict[str, Any]:
    """A hundred groups of errors with examples, a table of fifty columns, a long list, a
    long text and a deep dict."""
    groups = [
        {
            "kind": f"kind-{g}",
            "message": f"error number {g} " + "with a long explanation " * 5,
            "count": 1000 + g,
            "examples": [
                {"item": i, "path": f"/items/{i}/" + "/".join(["deep"] * 12), "value": "x" * 80}
                for i in range(20)
            ],
        }
        for g in range(100)
    ]
    table = [
        {f"column_{c:02d}_with_a_long_name": f"value {r}.{c}" for c in range(50)}
        for r in range(300)
    ]
    deep: dict[str, Any] = {"leaf": "bottom"}
    for level in range(12):
        deep = {f"level{level}": deep}
    return {
        "errors": groups,
        "table": table,
        "paths": [f"/items/{i}" for i in range(4822)],
        "text": "word " * 20000,
        "unbroken": "y" * 5000,
        "deep": deep,
    }


big_result = Pipeline("big-result", [big], inputs=OPTIONAL)
