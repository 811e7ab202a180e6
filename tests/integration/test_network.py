"""Steps without network (``network=False``): a Python step and a Command cannot open a
connection to a real local TCP listener, exchange UDP datagrams (what a DNS lookup does) or
resolve a name, while the same steps with network can; the Python step's log lines, stage,
progress, output files and errors still reach the run; a time limit and a cancel still stop
them."""

from __future__ import annotations

import socketserver
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from gristmill import RunState
from gristmill.app.service import Service
from gristmill.app.submission import submit, wait
from gristmill.authoring.isolation import isolation_mode
from gristmill.executors.inline import run_inline
from tests.integration.conftest import Workers, wait_until


@pytest.fixture(autouse=True)
def _namespaces() -> None:
    flags, reason = isolation_mode()
    if not flags:
        pytest.skip(f"this machine cannot make network namespaces: {reason}")


class _Hello(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.sendall(b"hello")


class _Answer(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        _data, sock = self.request
        sock.sendto(b"answered", self.client_address)


@pytest.fixture
def listeners() -> Iterator[tuple[int, int]]:
    """A TCP server that says hello and a UDP server that answers, on free local ports."""
    tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Hello)
    udp = socketserver.UDPServer(("127.0.0.1", 0), _Answer)
    threads = [threading.Thread(target=s.serve_forever, daemon=True) for s in (tcp, udp)]
    for thread in threads:
        thread.start()
    try:
        yield tcp.server_address[1], udp.server_address[1]
    finally:
        for server in (tcp, udp):
            server.shutdown()
            server.server_close()


def test_steps_without_network_reach_nothing_and_with_network_do(
    service: Service, listeners: tuple[int, int]
) -> None:
    tcp_port, udp_port = listeners
    params = {"tcp_port": tcp_port, "udp_port": udp_port}
    run_id = submit("reaching", params=params, service=service)
    assert run_inline(service, run_id) == RunState.SUCCEEDED
    status = wait(run_id, timeout=30, service=service)
    for online in ("python_online", "command_online"):
        result = status.result(online)
        data = result["data"] if online.startswith("command") else result
        assert data["tcp"] == "hello" and data["udp"] == "answered", online
    for offline in ("python_offline", "command_offline"):
        result = status.result(offline)
        data = result["data"] if offline.startswith("command") else result
        assert data["tcp"] == "refused: Network is unreachable", offline
        assert data["udp"].startswith("refused"), offline
        assert data["resolve"].startswith("refused"), offline
    # The Python step ran in a process of its own, and what it reported came back.
    assert status.result("python_offline")["pid"] != status.result("python_online")["pid"]
    offline = next(step for step in status.steps if step.name == "python_offline")
    assert [output.name for output in offline.outputs] == ["tried.txt"]
    lines = [(line.step, line.text) for line in service.store.read_log(run_id)]
    pid = status.result("python_offline")["pid"]
    assert ("python_offline", f"reaching out from process {pid}") in lines


def test_a_step_without_network_still_stops_at_its_time_limit(service: Service) -> None:
    for pipeline, step in (
        ("offline-timeout", "offline_forever"),
        ("offline-command-timeout", "sleeper"),
    ):
        run_id = submit(pipeline, service=service)
        assert run_inline(service, run_id) == RunState.FAILED
        status = wait(run_id, timeout=30, service=service)
        assert status.error == f"step `{step}` ran past its time limit of 1 s"


def test_a_step_without_network_is_cancelled(
    service: Service, workers: Workers, control: Path
) -> None:
    workers.start(1)
    run_id = submit("offline-cancel", params={"control": str(control)}, service=service)
    wait_until((control / f"{run_id}-offline").exists, timeout=30, message="the step to start")
    assert service.store.request_cancel(run_id)
    status = wait(run_id, timeout=30, service=service)
    assert status.state == RunState.CANCELLED


def test_errors_of_a_step_without_network_come_back(service: Service) -> None:
    run_id = submit("offline-errors", service=service)
    assert run_inline(service, run_id) == RunState.FAILED
    status = wait(run_id, timeout=30, service=service)
    assert status.error == "the data at <run>/a1/offline_failing is bad"
    assert ("offline_failing", "about to fail") in [
        (line.step, line.text) for line in service.store.read_log(run_id)
    ]
    run_id = submit("offline-crash", service=service)
    assert run_inline(service, run_id) == RunState.FAILED
    error = wait(run_id, timeout=30, service=service).error or ""
    assert error.startswith("internal error") and "a bug" not in error
    run_id = submit("offline-json", service=service)
    assert run_inline(service, run_id) == RunState.FAILED
    assert wait(run_id, timeout=30, service=service).error == (
        "step `offline_not_json` returned a value of type set, which cannot be stored as JSON; "
        "return dicts, lists, strings, numbers, booleans or None"
    )
