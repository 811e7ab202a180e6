"""A pipeline whose code changes under a running server, for the stale-results browser test and
the screenshot of a stale run.

The version of its ``ApplyRules`` step is read, whenever it is asked for, from the file named
by the environment variable ``E2E_RULES_EDITION``, as if a new edition of the rules had been
deployed. While a file ``hold`` lies beside that file, the step waits, so that a test can see
the recomputation under way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gristmill import Inputs, Pipeline, RunContext, Task, TaskError, task

EDITION = "E2E_RULES_EDITION"


def _edition_file() -> Path | None:
    path = os.environ.get(EDITION)
    return Path(path) if path else None


@task(title="Load")
def load(run: RunContext) -> dict[str, int]:
    return {"rows": 3}


class ApplyRules(Task):
    """Checks the rows against the current edition of the rules."""

    title = "Apply rules"

    @property  # type: ignore[override]
    def version(self) -> str | None:
        edition = _edition_file()
        return edition.read_text().strip() if edition is not None else None

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        edition = _edition_file()
        deadline = time.monotonic() + 60
        while edition is not None and edition.with_name("hold").exists():
            run.check_cancelled()
            if time.monotonic() > deadline:
                raise TaskError("the test never released this step")
            time.sleep(0.01)
        return {"rules edition": self.version, "rows checked": upstream["load"]["rows"]}


@task(title="Summary", needs=["ApplyRules"])
def summary(run: RunContext, upstream: Mapping[str, Any]) -> str:
    checked = upstream["ApplyRules"]
    return f"{checked['rows checked']} rows checked against edition {checked['rules edition']}"


rules = Pipeline(
    "rules",
    [load, ApplyRules, summary],
    title="Rules check",
    description="Checks rows against the current edition of the rules.",
    inputs=Inputs(min_count=0),
)
