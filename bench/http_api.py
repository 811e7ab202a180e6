"""HTTP figures of ``gristmill serve``: submissions per second (a small file each, with 2
workers busy processing them), the latency of the run-status endpoint under that load, the
server's CPU time and resident memory; and, before that load, the latency of single requests
made one at a time.

    python bench/http_api.py [--submissions 500] [--serve-option=OPTION ...]

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
from collections.abc import Mapping, Sequence
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


def cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far (all its threads), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start(
    data_dir: Path,
    options: Sequence[str] = (),
    *,
    workers: int = 2,
    launcher: Sequence[str] = (),
    timeout: float = 60,
    settings: Mapping[str, str] | None = None,
) -> tuple[subprocess.Popen[str], str]:
    """Start ``gristmill serve`` (under ``launcher``, e.g. valgrind, if given; with
    ``settings``, more ``GRISTMILL_*`` variables); return the process and its URL once it
    listens."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GRISTMILL_", "DJANGO_"))}
    env.update(settings or {})
    process = subprocess.Popen(
        [
            *launcher,
            sys.executable,
            "-m",
            "gristmill",
            "serve",
            "--port",
            "0",
            "--workers",
            str(workers),
            "--data-dir",
            str(data_dir),
            "--pipelines",
            str(PIPELINES),
            *options,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
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


PAYLOAD = b"gristmill benchmark line\n" * 40  # 1 KB
ONE_AT_A_TIME = 200


def one_at_a_time(client: httpx.Client) -> dict[str, float]:
    """p50 of each request alone (the previous one answered), workers processing submissions."""
    run_id = submit(client, "first.txt")
    requests = {
        "/healthz": lambda: client.get("/healthz"),
        "status": lambda: client.get(f"/api/v1/runs/{run_id}"),
        "submission": lambda: submit(client, "one.txt"),
    }
    figures = {}
    for name, request in requests.items():
        latencies = []
        for _ in range(ONE_AT_A_TIME):
            started = time.perf_counter()
            request()
            latencies.append(time.perf_counter() - started)
        figures[f"one at a time: {name} p50 (ms)"] = statistics.median(latencies) * 1000
    return figures


def submit(client: httpx.Client, name: str) -> str:
    answer = client.post(
        "/api/v1/pipelines/bench-file/runs", files={"files": (name, PAYLOAD, "text/plain")}
    )
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


def measure(url: str, pid: int, submissions: int) -> dict[str, float]:
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
            submit(client, "warm.txt")
        idle = rss_mb(pid)
        alone = one_at_a_time(client)
        poller = threading.Thread(target=poll_status)
        poller.start()
        cpu_started = cpu_seconds(pid)
        started = time.perf_counter()
        for number in range(submissions):
            run_ids.append(submit(client, f"f{number}.txt"))
        elapsed = time.perf_counter() - started
        done.set()
        poller.join()
        cpu = cpu_seconds(pid) - cpu_started
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
        "requests per second, both connections": (submissions + len(latencies)) / elapsed,
        "serve CPU per request (ms)": cpu * 1000 / (submissions + len(latencies)),
        "serve CPU, share of one core": cpu / elapsed,
        **alone,
        "serve RSS idle (MB)": idle,
        "serve RSS under load, peak (MB)": peak[0],
    }


def parser_with_serve_options(description: str) -> argparse.ArgumentParser:
    """An argument parser with ``--serve-option``, for the HTTP benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument(
        "--serve-option",
        action="append",
        default=[],
        metavar="OPTION",
        help="an extra option for gristmill serve (repeatable)",
    )
    return parser


def served(options: list[str]) -> str:
    """``gristmill serve`` with its extra options, for a report's title."""
    return " ".join(["gristmill serve", *options])


def main() -> None:
    parser = parser_with_serve_options(__doc__.split("\n\n")[0])
    parser.add_argument("--submissions", type=int, default=500)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gristmill-http-bench-") as directory:
        process, url = start(Path(directory), args.serve_option)
        try:
            figures = measure(url, process.pid, args.submissions)
        finally:
            stop(process)
    print(
        f"{served(args.serve_option)} over HTTP: {args.submissions} submissions of a 1 KB file, "
        f"2 workers; {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for name, value in figures.items():
        print(f"  {name:38s} {value:10.2f}")


if __name__ == "__main__":
    main()
