"""Running Python code sent with a run: full code execution, for trusted administrators.

:class:`EvaluatePython` runs the code held in a pipeline parameter with the worker's Python
interpreter (``python -I -c CODE INPUT``: the input's path is ``sys.argv[1]``), as a
:class:`~gristmill.Command`: no shell, a scrubbed environment, its own process group, a time
limit, stdout and stderr in the run log.
It is **code execution, not a sandbox**: the code can do whatever the worker's user can.

It is off unless the server enables it (``GRISTMILL_ALLOW_PYTHON_STEPS=1``): otherwise the
step fails saying so. Offer it only in a pipeline for superusers
(``access="superuser"``): see docs/library.md.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from gristmill.authoring.commands import Command
from gristmill.authoring.context import RunContext
from gristmill.errors import TaskError

SETTING = "GRISTMILL_ALLOW_PYTHON_STEPS"
"""The setting that enables :class:`EvaluatePython` steps on a server."""


def python_steps_allowed(environ: Mapping[str, str] | None = None) -> bool:
    """Whether :data:`SETTING` enables Python steps (``1``, ``true``, ``yes`` or ``on``)."""
    value = (os.environ if environ is None else environ).get(SETTING, "")
    return value.strip().lower() in ("1", "true", "yes", "on")


class EvaluatePython(Command):
    """Run the Python code in the parameter ``param`` on the run's input (code execution)."""

    superusers_only = True
    """Read by :class:`~gristmill.Pipeline`: a pipeline with this step must be for superusers."""

    def __init__(
        self,
        name: str = "evaluate_python",
        *,
        param: str = "code",
        timeout: float = 60,
        outputs: tuple[str, ...] = (),
        stdout_json: bool = False,
        title: str = "Python code (code execution)",
    ):
        super().__init__(
            name,
            [sys.executable, "-I", "-c", f"{{params.{param}}}", "{input}"],
            outputs=outputs,
            timeout=timeout,
            stdout_json=stdout_json,
            title=title,
            description="Runs Python code given with the run: code execution, for administrators.",
        )

    def process(self, run: RunContext, upstream: Mapping[str, Any]) -> dict[str, Any]:
        if not python_steps_allowed():
            raise TaskError(
                "running Python code is turned off on this server; an administrator can turn "
                f"it on with {SETTING}=1"
            )
        return super().process(run, upstream)
