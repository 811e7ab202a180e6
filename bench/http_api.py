"""HTTP figures of ``gristmill serve``: submissions per second (a small file each, with 2
workers busy processing them), the latency of the run-status endpoint under that load, and the
server's resident memory idle and under load.

    python bench/http_api.py [--submissions 500]

Everything runs on this machine: a ``gristmill serve --port 0 --workers 2`` on a temporary
SQLite data directory, and this process as the client (httpx, one keep-alive connection for
submissions and another for status reads, in two threads).
"""

from __future__ import annotations

import argparse
import os
import select
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

BENCH = Path(__file__).resolve().parent
PIPELINES = BENCH / "pipelines.py"


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MiB (VmRSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start(data_dir: Path) -> tuple[subprocess.Popen[str], str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "gristmill",
            "serve",
            "--port",
            "0",
            "--workers",
            "2",
            "--data-dir",
            str(data_dir),
            "--pipelines",
            str(PIPELINES),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if select.select([process.stdout], [], [], 0.5)[0]:
            line = process.stdout.readline()
            if line.startswith("gristmill serving "):
                return process, line.split()[2]
            if not line:
                break
    stop(process)
    raise SystemExit("gristmill serve did not start")


def stop(process: subprocess.Popen[str]) -> None:
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    if process.stdout is not None:
        process.stdout.close()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def measure(url: str, pid: int, submissions: int) -> dict[str, float]:
    payload = b"gristmill benchmark line\n" * 40  # 1 KB
    run_ids: list[str] = []
    latencies: list[float] = []
    peak = [0.0]
    done = threading.Event()

    def poll_status() -> None:
        with httpx.Client(base_url=url, timeout=30) as client:
            while not done.is_set():
                if run_ids:
                    started = time.perf_counter()
                    answer = client.get(f"/api/v1/runs/{run_ids[-1]}")
                    latencies.append(time.perf_counter() - started)
                    assert answer.status_code == 200, answer.text
                peak[0] = max(peak[0], rss_mb(pid))

    with httpx.Client(base_url=url, timeout=30) as client:
        for _ in range(20):  # warm up
            client.post(
                "/api/v1/pipelines/bench-file/runs",
                files={"files": ("warm.txt", payload, "text/plain")},
            )
        idle = rss_mb(pid)
        poller = threading.Thread(target=poll_status)
        poller.start()
        started = time.perf_counter()
        for number in range(submissions):
            answer = client.post(
                "/api/v1/pipelines/bench-file/runs",
                files={"files": (f"f{number}.txt", payload, "text/plain")},
            )
            assert answer.status_code == 201, answer.text
            run_ids.append(answer.json()["id"])
        elapsed = time.perf_counter() - started
        done.set()
        poller.join()
        # Every run must succeed: the figures mean nothing otherwise.
        deadline = time.monotonic() + 120
        for run_id in run_ids:
            while (state := client.get(f"/api/v1/runs/{run_id}").json()["state"]) in (
                "queued",
                "running",
            ):
                if time.monotonic() > deadline:
                    raise SystemExit(f"run {run_id} still {state}")
                time.sleep(0.05)
            if state != "succeeded":
                raise SystemExit(f"run {run_id} ended {state}")
    return {
        "submissions per second": submissions / elapsed,
        "status p50 (ms)": statistics.median(latencies) * 1000,
        "status p95 (ms)": percentile(latencies, 0.95) * 1000,
        "status reads": float(len(latencies)),
        "serve RSS idle (MB)": idle,
        "serve RSS under load, peak (MB)": peak[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gristmill-http-bench-") as directory:
        process, url = start(Path(directory))
        try:
            figures = measure(url, process.pid, args.submissions)
        finally:
            stop(process)
    print(
        f"gristmill serve over HTTP: {args.submissions} submissions of a 1 KB file, "
        f"2 workers; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for name, value in figures.items():
        print(f"  {name:34s} {value:10.2f}")


if __name__ == "__main__":
    main()
