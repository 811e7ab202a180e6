"""Engine unit tests: the runner, planner, watchdog and executors on a MemoryStore, with no
database and no Django (``test_without_django.py`` checks that)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import pytest

from gristmill.app.service import Service
from gristmill.authoring.pipelines import Pipeline

MakeService = Callable[..., Service]


@pytest.fixture
def make_service(tmp_path: Path) -> MakeService:
    """``make_service(*pipelines, **settings)``: a service on a new MemoryStore offering
    ``pipelines``, its files under the test's temporary directory."""

    def make(*pipelines: Pipeline, **settings: Any) -> Service:
        return Service.in_memory(pipelines, tmp_path / "data", **settings)

    return make


PYTEST_THEN_REPORT = """
import json, sys
import pytest
code = pytest.main({args!r})
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
print(json.dumps({{"exit": int(code), "django": loaded}}))
"""


def fresh_pytest(args: Sequence[str], cwd: Path) -> tuple[dict[str, Any], str]:
    """Run pytest with ``args`` in a fresh interpreter in ``cwd``; return what it reported
    (its exit status, and the Django modules it had imported by the end) and its output."""
    done = subprocess.run(
        [sys.executable, "-c", PYTEST_THEN_REPORT.format(args=list(args))],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    *_, last = done.stdout.strip().splitlines() or [""]
    assert last.startswith("{"), output
    return json.loads(last), output
