"""Latency of ``/healthz`` and of a run-status read in ``gristmill serve``, with no slow client
connected, then with 50 clients trickling request bodies a byte a second, then after 12
submissions of a URL whose server never answers, in the same run.

    python bench/slow_clients.py [--slow 50] [--urls 12] [--reads 300] [--serve-option=...]

Everything runs on this machine: a ``gristmill serve --port 0 --workers 2`` on a temporary
SQLite data directory (its body limits raised so that every slow client is let in:
``GRISTMILL_READ_TIMEOUT=600``, ``GRISTMILL_BODY_MIN_RATE=1``,
``GRISTMILL_BODIES_PER_CLIENT=1000``; URL inputs allowed to reach this machine, with a minute
each), and this process as the clients: raw sockets for the slow ones, fed by one thread, a
listening socket that never accepts as the URLs' server, and one httpx keep-alive connection
timing the requests one after another.
"""

from __future__ import annotations

import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from http_api import (  # beside this file
    parser_with_serve_options,
    percentile,
    served,
    start,
    stop,
    submit,
)

LIMITS = {
    "GRISTMILL_READ_TIMEOUT": "600",
    "GRISTMILL_BODY_MIN_RATE": "1",
    "GRISTMILL_BODIES_PER_CLIENT": "1000",
    "GRISTMILL_FETCH_ALLOW": "127.0.0.0/8",
    "GRISTMILL_FETCH_TIMEOUT": "60",
    "GRISTMILL_DRAIN_SECONDS": "1",  # the workers are waiting on silent URLs when it stops
    "GRISTMILL_KILL_GRACE": "1",
}
URL_PIPELINE = "bench-url"


def slow_body(url: str) -> socket.socket:
    """A connection whose request body has begun, once the server has started receiving it."""
    address = urlsplit(url)
    assert address.hostname is not None and address.port is not None
    sock = socket.create_connection((address.hostname, address.port), timeout=60)
    sock.sendall(
        f"POST /api/v1/pipelines/bench-file/runs HTTP/1.1\r\nHost: {address.netloc}\r\n"
        "Content-Type: application/json\r\nContent-Length: 1000000\r\n"
        "Expect: 100-continue\r\n\r\n".encode()
    )
    interim = b""
    while b"\r\n\r\n" not in interim:
        chunk = sock.recv(1024)
        if not chunk:
            raise SystemExit(f"the server refused a slow client: {interim!r}")
        interim += chunk
    sock.sendall(b"{")
    return sock


@contextmanager
def trickling(url: str, count: int) -> Iterator[None]:
    """``count`` slow clients, each sending a byte a second while the block runs."""
    with ExitStack() as stack:
        sockets = [stack.enter_context(slow_body(url)) for _ in range(count)]
        done = threading.Event()

        def trickle() -> None:
            while not done.wait(1.0):
                for sock in sockets:
                    sock.sendall(b" ")

        feeder = threading.Thread(target=trickle)
        feeder.start()
        try:
            yield
        finally:
            done.set()
            feeder.join()


def latencies(request: Callable[[], httpx.Response], reads: int) -> list[float]:
    times = []
    for _ in range(reads):
        started = time.perf_counter()
        answer = request()
        times.append(time.perf_counter() - started)
        if answer.status_code != 200:
            raise SystemExit(f"{answer.request.url} answered {answer.status_code}")
    return times


@contextmanager
def silent_urls(client: httpx.Client, count: int, figures: dict[str, float]) -> Iterator[None]:
    """``count`` runs submitted with a URL whose server never answers (their submission
    times go into ``figures``), their fetches under way while the block runs."""
    with socket.create_server(("127.0.0.1", 0)) as silent:
        body = {"inputs": [{"kind": "url", "url": f"http://127.0.0.1:{silent.getsockname()[1]}/"}]}
        times = []
        for _ in range(count):
            started = time.perf_counter()
            answer = client.post(f"/api/v1/pipelines/{URL_PIPELINE}/runs", json=body)
            times.append(time.perf_counter() - started)
            if answer.status_code != 201:
                raise SystemExit(f"a URL submission answered {answer.status_code}: {answer.text}")
        figures[f"{count} silent URL submissions: max (ms)"] = max(times) * 1000
        yield


def measure(url: str, slow: int, urls: int, reads: int) -> dict[str, float]:
    figures: dict[str, float] = {}
    with httpx.Client(base_url=url, timeout=60) as client:
        run_id = submit(client, "status.txt")
        requests = {
            "/healthz": lambda: client.get("/healthz"),
            "status": lambda: client.get(f"/api/v1/runs/{run_id}"),
        }
        for request in requests.values():  # warm up
            latencies(request, 20)
        phases = {
            "no slow client": ExitStack,
            f"{slow} slow clients": lambda: trickling(url, slow),
            f"{urls} silent URLs": lambda: silent_urls(client, urls, figures),
        }
        for label, phase in phases.items():
            with phase():
                for name, request in requests.items():
                    times = latencies(request, reads)
                    figures[f"{name}, {label}: p50 (ms)"] = statistics.median(times) * 1000
                    figures[f"{name}, {label}: p95 (ms)"] = percentile(times, 0.95) * 1000
    return figures


def main() -> None:
    parser = parser_with_serve_options(__doc__.split("\n\n")[0])
    parser.add_argument("--slow", type=int, default=50, help="slow clients (default 50)")
    parser.add_argument("--urls", type=int, default=12, help="silent URL submissions")
    parser.add_argument("--reads", type=int, default=300, help="reads timed per figure")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="gristmill-slow-bench-") as directory:
        process, url = start(Path(directory), args.serve_option, workers=2, settings=LIMITS)
        try:
            figures = measure(url, args.slow, args.urls, args.reads)
        finally:
            stop(process)
    print(
        f"{served(args.serve_option)}: {args.reads} reads per figure, one at a time; "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}"
    )
    for name, value in figures.items():
        print(f"  {name:42s} {value:10.2f}")


if __name__ == "__main__":
    main()
