"""An example pipeline with all three kinds of step: a function, a class and a command.

gristmill run examples/textstats.py examples/data/poem.txt --param min_length=4
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from gristmill import Command, Inputs, Pipeline, RunContext, Task, TaskError, task


class Params(BaseModel):
    min_length: int = Field(3, ge=1, description="Ignore words shorter than this")


@task(title="Read lines", uses=())
def read_lines(run: RunContext) -> dict[str, Any]:
    """A function task: read the text, fail clearly if it is not text."""
    try:
        lines = run.input.path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise TaskError(f"{run.input.name} is not UTF-8 text") from None
    run.log(f"read {len(lines)} lines")
    return {"lines": len(lines)}


class LongWords(Task):
    """A class task: list the long words, reporting progress."""

    title = "Find long words"
    uses = ("min_length",)

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        total = upstream["read_lines"]["lines"]
        found: set[str] = set()
        with run.stage("scanning"), run.input.open("r") as text:
            for number, line in enumerate(text, 1):
                found.update(
                    w.strip(".,;:!?\"'").lower()
                    for w in line.split()
                    if len(w.strip(".,;:!?\"'")) >= run.params.min_length
                )
                run.progress(number, total)
        return {"count": len(found), "words": sorted(found)}


# A command task: argv is a list, never a shell string; {input} fills one whole argument.
sort_lines = Command(
    "sort_lines",
    ["sort", "--output={workdir}/sorted.txt", "--", "{input}"],
    outputs=["sorted.txt"],
    timeout=60,
    title="Sort the lines",
)

textstats = Pipeline(
    "textstats",
    [read_lines, LongWords, sort_lines],
    title="Text statistics",
    inputs=Inputs(kinds=["file", "text"], extensions=["txt"]),
    params=Params,
)
