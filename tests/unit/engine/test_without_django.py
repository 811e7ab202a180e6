"""The engine's unit tests need no Django: run them in a fresh interpreter and look at what it
imported."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent
ROOT = HERE.parents[2]

SCRIPT = """
import json, sys
import pytest
code = pytest.main(["-q", "-p", "no:cacheprovider", {here!r}, "--ignore", {me!r}])
loaded = sorted(m for m in sys.modules if m == "django" or m.startswith("django."))
print(json.dumps({{"exit": int(code), "django": loaded}}))
"""


def test_the_engine_unit_tests_pass_without_importing_django() -> None:
    script = SCRIPT.format(here=str(HERE), me=__file__)
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    *_, last = done.stdout.strip().splitlines() or [""]
    assert last.startswith("{"), done.stdout + done.stderr
    report = json.loads(last)
    assert report == {"exit": 0, "django": []}, done.stdout
