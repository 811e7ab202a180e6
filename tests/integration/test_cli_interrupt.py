"""``gristmill run`` interrupted with Ctrl-C, as docs/cli.md describes it."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

from tests.integration.conftest import PIPELINES


def test_ctrl_c_exits_130_and_records_the_run_as_cancelled(tmp_path: Path) -> None:
    # Given `gristmill run` on a step that holds until released
    control = tmp_path / "control"
    control.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    command = [sys.executable, "-m", "gristmill", "run", f"{PIPELINES}:holding"]
    command += ["--data-dir", str(tmp_path / "data"), "-p", f"control={control}"]
    process = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while not (control / "started-1").exists():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the step never started"
            time.sleep(0.02)
        # When it is interrupted (Ctrl-C)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Then it exits with 130, saying so, and the run is recorded as cancelled
    assert process.returncode == 130, err
    run_id = err.strip().splitlines()[-1].removeprefix("run ").removesuffix(" cancelled")
    with sqlite3.connect(tmp_path / "data" / "gristmill.sqlite3") as database:
        (state,) = database.execute(
            "SELECT state FROM gristmill_run WHERE id = ?", [uuid.UUID(run_id).hex]
        ).fetchone()
    assert state == "cancelled"
