"""The installed extras: what CI installs must be a consistent set."""

from __future__ import annotations

import subprocess
import sys


def test_the_installed_packages_have_no_dependency_conflict() -> None:
    # pip only warns when an extra pulls in a conflicting set; `pip check` fails on it.
    done = subprocess.run(
        [sys.executable, "-m", "pip", "check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout == "No broken requirements found.\n"
