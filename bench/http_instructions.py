"""Instructions per request in ``gristmill serve``, counted by valgrind's callgrind: a figure
that does not move with the machine's load, for comparing two versions of the HTTP path.

    python bench/http_instructions.py [--requests 100] [--serve-option=OPTION ...]

Starts ``gristmill serve --port 0 --workers 0`` under ``valgrind --tool=callgrind`` on a
temporary SQLite data directory (no workers: the server alone is measured), warms each kind of
request up, then for each kind zeroes the counters (``callgrind_control -z``), makes the requests
one after another from this process, and dumps the counters (``callgrind_control -d``). The
counts are the user-space instructions of all the server's threads; the kernel's share (system
calls, fsync, the network) is not in them. Takes a few minutes, mostly Django starting under
valgrind.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import httpx
from http_api import (  # beside this file
    PAYLOAD,
    parser_with_serve_options,
    served,
    start,
    stop,
    submit,
)

WARM_UP = 20


TOTALS = re.compile(r"^(?:summary|totals):\s+(\d+)", re.MULTILINE)


def instructions(dump_dir: Path, pid: int, seen: set[str]) -> int | None:
    """The instruction count of a dump of process ``pid`` not in ``seen``, once it is whole."""
    for path in dump_dir.glob(f"callgrind.{pid}.*"):
        if path.name not in seen:
            match = TOTALS.search(path.read_text(errors="replace"))  # written last
            if match is not None:
                return int(match.group(1))
    return None


def counted(pid: int, dump_dir: Path, request: Callable[[], object], count: int) -> float:
    """Instructions the server spent per request, over ``count`` requests in a row."""
    control = ["callgrind_control", "-z", str(pid)]
    subprocess.run(control, check=True, capture_output=True)
    for _ in range(count):
        request()
    seen = {path.name for path in dump_dir.iterdir()}
    subprocess.run(["callgrind_control", "-d", str(pid)], check=True, capture_output=True)
    deadline = time.monotonic() + 60
    while (total := instructions(dump_dir, pid, seen)) is None:
        if time.monotonic() > deadline:
            raise SystemExit("callgrind wrote no dump")
        time.sleep(0.1)  # polling for valgrind's file; nothing to wait on
    return total / count


def main() -> None:
    parser = parser_with_serve_options(__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100, help="of each kind (default 100)")
    args = parser.parse_args()
    if shutil.which("valgrind") is None or shutil.which("callgrind_control") is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    with tempfile.TemporaryDirectory(prefix="gristmill-http-instructions-") as directory:
        dump_dir = Path(directory) / "callgrind"
        dump_dir.mkdir()
        launcher = [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={dump_dir}/callgrind.%p",
        ]
        process, url = start(
            Path(directory) / "data", args.serve_option, workers=0, launcher=launcher, timeout=600
        )
        try:
            with httpx.Client(base_url=url, timeout=120) as client:
                run_id = submit(client, "first.txt")
                requests: dict[str, Callable[[], object]] = {
                    "/healthz": lambda: client.get("/healthz").raise_for_status(),
                    "status": lambda: client.get(f"/api/v1/runs/{run_id}").raise_for_status(),
                    "submission (1 KB file)": lambda: submit(client, "file.txt"),
                }
                for request in requests.values():
                    for _ in range(WARM_UP):
                        request()
                figures = {
                    name: counted(process.pid, dump_dir, request, args.requests)
                    for name, request in requests.items()
                }
        finally:
            stop(process)
    print(
        f"{served(args.serve_option)}, no workers: instructions per request "
        f"(callgrind, {args.requests} of each, {len(PAYLOAD)} B files)"
    )
    for name, value in figures.items():
        print(f"  {name:24s} {value / 1e6:8.3f} M")


if __name__ == "__main__":
    main()
