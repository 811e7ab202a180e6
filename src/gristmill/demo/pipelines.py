"""The demo pipelines: a word count, a JSON check, and the records check (map steps)."""

from __future__ import annotations

import collections
import csv
import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from gristmill import Inputs, Pipeline, RunContext, Task, TaskError, task
from gristmill.authoring.jsonload import load
from gristmill.demo import records as records_demo

WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?", re.UNICODE)


class WordcountParams(BaseModel):
    """Parameters of the word-count demo."""

    model_config = {"extra": "forbid"}

    top: int = Field(10, ge=1, le=1000, description="How many of the most common words to list")
    ignore_case: bool = Field(True, description="Count 'The' and 'the' as one word")


@task(title="Read the text")
def read_text(run: RunContext) -> dict[str, Any]:
    """Decode the input as UTF-8 text and count its lines."""
    try:
        text = run.input.path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise TaskError(
            f"{run.input.name} is not UTF-8 text (byte {error.start} is not "
            "valid); save it as UTF-8 and try again"
        ) from None
    lines = text.count("\n") + (1 if text and not text.endswith("\n") else 0)
    run.log(f"{run.input.name}: {len(text)} characters, {lines} lines")
    return {"characters": len(text), "lines": lines}


class CountWords(Task):
    """Count every word, reporting progress line by line."""

    title = "Count words"
    uses = ("ignore_case",)

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        total_lines = upstream["read_text"]["lines"]
        counts: collections.Counter[str] = collections.Counter()
        unreported = 0
        with run.stage("counting"), run.input.open("r") as lines:
            for number, line in enumerate(lines, 1):
                words = WORD.findall(line.lower() if run.params.ignore_case else line)
                counts.update(words)
                # Every 64 KB of text, whatever the length of its lines: often enough for a
                # smooth progress bar and a prompt cancel, rarely enough to cost nothing.
                unreported += len(line)
                if unreported >= 65536:
                    unreported = 0
                    run.progress(number, total_lines)
                    run.check_cancelled()
        run.progress(total_lines, total_lines)
        return {"words": sum(counts.values()), "distinct": len(counts), "counts": dict(counts)}


class Report(Task):
    """Write the counts to a CSV file and list the most common words."""

    title = "Report"
    uses = ("top",)

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        counts = upstream["CountWords"]["counts"]
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        path = run.workdir / "word-counts.csv"
        with path.open("w", newline="", encoding="utf-8") as out:
            writer = csv.writer(out)
            writer.writerow(["word", "count"])
            writer.writerows(ranked)
        run.output(path, media_type="text/csv")
        return {"top": [{"word": w, "count": c} for w, c in ranked[: run.params.top]]}

    def context(self, run: RunContext, result: Any) -> dict[str, Any]:
        return {"most common words": result["top"]}


wordcount = Pipeline(
    "wordcount",
    [read_text, CountWords, Report],
    title="Word count",
    description="Counts the words of a text file and lists the most common ones.",
    inputs=Inputs(
        kinds=["file", "text"], extensions=["txt", "md", "csv"], max_size=50 * 1024 * 1024
    ),
    params=WordcountParams,
)


@task(title="Parse JSON")
def parse_json(run: RunContext) -> dict[str, Any]:
    """Parse the input and describe its top level."""
    data = load(run.input.path, name=run.input.name)  # a TaskError saying where, if it fails
    kind = type(data).__name__
    size = len(data) if isinstance(data, list | dict) else None
    run.log(f"top level is a {kind}" + (f" of {size} entries" if size is not None else ""))
    return {"type": kind, "entries": size}


class FieldStats(Task):
    """Count how often each top-level field appears in a list of objects."""

    title = "Field statistics"

    def is_applicable(self, run: RunContext) -> bool:
        return (run.upstream.get("parse_json") or {}).get("type") == "list"

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        items = load(run.input.path, name=run.input.name)
        fields: collections.Counter[str] = collections.Counter()
        for number, item in enumerate(items, 1):
            if isinstance(item, dict):
                fields.update(item.keys())
            if number % 1000 == 0:
                run.progress(number, len(items))
        return {"items": len(items), "fields": dict(fields.most_common())}


json_check = Pipeline(
    "json-check",
    [parse_json, FieldStats],
    title="JSON check",
    description="Checks that a file is valid JSON and counts the fields of a list of objects.",
    inputs=Inputs(kinds=["file", "json"], extensions=["json"], max_size=50 * 1024 * 1024),
)

records_check = records_demo.records_check
"""The records demo: map and reduce steps, ancestors (see :mod:`gristmill.demo.records`)."""
