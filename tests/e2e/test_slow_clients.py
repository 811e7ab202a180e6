"""Slow and stalled clients cannot starve ``gristmill serve`` (promise 14), over raw sockets.

Each slow client sends its headers with ``Expect: 100-continue``: the server answers
``100 Continue`` when it starts receiving the body, which tells the test, without waiting on a
clock, that the server holds that body in flight.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import select
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx
import pytest

from gristmill.server.protocol import NOT_HTTP
from tests.e2e.conftest import Server, kill_server, start_server
from tests.integration.conftest import wait_until

SUBMIT = "/api/v1/pipelines/trivial/runs"
DEADLINE = 30.0
"""Seconds within which every answer awaited here must come."""


@pytest.fixture(scope="module")
def patient(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that lets slow requests go on for minutes, 55 bodies at a time from one
    address."""
    server = start_server(
        tmp_path_factory.mktemp("patient"),
        workers=0,
        settings={
            "GRISTMILL_READ_TIMEOUT": "300",
            "GRISTMILL_BODY_MIN_RATE": "1",
            "GRISTMILL_BODIES_PER_CLIENT": "55",
        },
        migrated=True,
    )
    yield server
    kill_server(server.process)


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server that waits one second at most for headers, or for more of a body."""
    server = start_server(
        tmp_path_factory.mktemp("strict"),
        workers=0,
        settings={"GRISTMILL_READ_TIMEOUT": "1"},
        migrated=True,
    )
    yield server
    kill_server(server.process)


@pytest.fixture(scope="module")
def fetching(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server with 2 workers, whose URL inputs may reach this machine, with a minute each."""
    server = start_server(
        tmp_path_factory.mktemp("fetching"),
        workers=2,
        settings={"GRISTMILL_FETCH_ALLOW": "127.0.0.0/8", "GRISTMILL_FETCH_TIMEOUT": "60"},
        migrated=True,
    )
    yield server
    kill_server(server.process)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        return json.loads(self.body)


def connect(server: Server) -> socket.socket:
    address = urlsplit(server.url)
    assert address.hostname is not None and address.port is not None
    return socket.create_connection((address.hostname, address.port), timeout=DEADLINE)


def read_until_closed(sock: socket.socket) -> Answer:
    """Everything the server sends until it closes the connection, as one answer."""
    data = b""
    end = time.monotonic() + DEADLINE
    while chunk := _recv(sock, end):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return Answer(int(status_line.split()[1]), headers, body)


def _recv(sock: socket.socket, end: float) -> bytes:
    remaining = end - time.monotonic()
    if remaining <= 0:
        pytest.fail(f"the server did not close the connection within {DEADLINE:g} s")
    sock.settimeout(remaining)
    return sock.recv(65536)


def send_head(server: Server, path: str = SUBMIT, length: int = 1_000_000) -> socket.socket:
    """A connection that has sent the headers of a request with a long body."""
    sock = connect(server)
    host = urlsplit(server.url).netloc
    sock.sendall(
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {length}\r\nExpect: 100-continue\r\n\r\n".encode()
    )
    return sock


def continued(sock: socket.socket) -> bool:
    """Whether the server answers ``100 Continue`` (rather than refusing the request)."""
    interim = b""
    end = time.monotonic() + DEADLINE
    while b"\r\n\r\n" not in interim:
        chunk = _recv(sock, end)
        if not chunk:
            break
        interim += chunk
    return interim.startswith(b"HTTP/1.1 100 ")


def start_body(server: Server, path: str = SUBMIT) -> socket.socket:
    """A connection that has sent a request's headers and the first byte of a long body, once
    the server has started receiving that body."""
    sock = send_head(server, path)
    if not continued(sock):
        sock.close()
        pytest.fail("the server refused the body instead of receiving it")
    sock.sendall(b"{")
    return sock


@contextlib.contextmanager
def slow_bodies(server: Server, count: int) -> Iterator[list[socket.socket]]:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(start_body(server)) for _ in range(count)]


def answered(sock: socket.socket) -> bool:
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def test_health_and_status_keep_answering_while_fifty_clients_trickle_bodies(
    patient: Server,
) -> None:
    with patient.client() as client:
        created = client.post(SUBMIT, json={"params": {"value": 1}})
        assert created.status_code == 201, created.text
        run_id = created.json()["id"]
        with slow_bodies(patient, 50) as slow:
            for _ in range(5):
                for sock in slow:
                    sock.sendall(b" ")  # one more byte from each slow client
                assert client.get("/healthz", timeout=DEADLINE).json()["status"] == "ok"
                status = client.get(f"/api/v1/runs/{run_id}", timeout=DEADLINE)
                assert status.json()["state"] == "queued"
            # Pages and submissions are not starved either.
            assert client.get("/", timeout=DEADLINE).status_code == 200
            another = client.post(SUBMIT, json={"params": {"value": 2}}, timeout=DEADLINE)
            assert another.status_code == 201, another.text
            # Every slow client is still sending, unanswered.
            assert not [sock for sock in slow if answered(sock)]


def test_a_stalled_body_is_answered_408_and_its_connection_closed(strict: Server) -> None:
    with start_body(strict) as sock:
        answer = read_until_closed(sock)
    assert answer.status == 408
    assert answer.headers["connection"] == "close"
    assert answer.json() == {
        "error": {
            "code": "too_slow",
            "message": "the request body came too slowly: the server waits 1 second at most "
            "for more of it, and needs 1 KiB a second on average; try again on a faster "
            "connection",
            "details": {},
        }
    }


def test_a_stalled_form_is_answered_with_a_408_page(strict: Server) -> None:
    with start_body(strict, "/pipelines/trivial/") as sock:
        answer = read_until_closed(sock)
    assert answer.status == 408
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert (
        b'<p id="error-message">The request body came too slowly: the server waits 1 second '
        b"at most for more of it, and needs 1 KiB a second on average; try again on a faster "
        b"connection.</p>"
    ) in answer.body


def test_headers_that_stall_are_answered_408_and_the_connection_closed(strict: Server) -> None:
    with connect(strict) as sock:
        sock.sendall(f"POST {SUBMIT} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Le".encode())
        answer = read_until_closed(sock)
    assert answer.status == 408
    assert answer.json() == {
        "error": {
            "code": "too_slow",
            "message": "the request's headers came too slowly: the server waits 1 second at "
            "most for them; try again on a faster connection",
            "details": {},
        }
    }


def test_a_connection_that_sends_nothing_is_closed(strict: Server) -> None:
    with connect(strict) as sock:
        answer = read_until_closed(sock)
    assert answer.status == 408
    assert answer.headers["content-type"] == "text/html; charset=utf-8"


def test_a_client_sending_more_bodies_than_its_share_is_answered_429(patient: Server) -> None:
    with slow_bodies(patient, 55), connect(patient) as extra:
        extra.sendall(
            f"POST {SUBMIT} HTTP/1.1\r\nHost: {urlsplit(patient.url).netloc}\r\n"
            "Content-Length: 10\r\n\r\n".encode()
        )
        answer = read_until_closed(extra)
    assert answer.status == 429
    assert answer.headers["retry-after"] == "300"
    assert answer.json() == {
        "error": {
            "code": "throttled",
            "message": "this address is already sending 55 requests with a body; wait for one "
            "to finish, then try again",
            "details": {},
        }
    }


def test_a_body_is_received_again_once_the_clients_earlier_bodies_end(patient: Server) -> None:
    def taken() -> bool:
        with send_head(patient) as sock:
            return continued(sock)

    with slow_bodies(patient, 55) as slow:
        assert not taken()
        slow.pop().close()
        # Once the server has seen that client go, a body from the address is taken again.
        wait_until(taken, DEADLINE, message="a body to be taken after one ended")


def test_urls_whose_server_never_answers_hold_no_request_thread(fetching: Server) -> None:
    # A listening socket nobody accepts from: connections open, and nothing is ever answered.
    with socket.create_server(("127.0.0.1", 0)) as silent, fetching.client() as client:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/data.csv"
        body = {"inputs": [{"kind": "url", "url": url}]}

        def submit(_: int) -> httpx.Response:
            with fetching.client() as own:
                return own.post("/api/v1/pipelines/any-source/runs", json=body, timeout=DEADLINE)

        # Twelve at once, more than the request threads: each is answered long before its
        # fetch could end (a minute), as no submission waits for its URL.
        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            answers = list(pool.map(submit, range(12)))
        assert [answer.status_code for answer in answers] == [201] * 12
        assert client.get("/healthz", timeout=DEADLINE).json()["status"] == "ok"
        run_id = answers[0].json()["id"]
        status = client.get(f"/api/v1/runs/{run_id}", timeout=DEADLINE).json()
        assert status["state"] in ("queued", "running")
        assert client.get("/", timeout=DEADLINE).status_code == 200


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(
            b"POST /api/v1/pipelines/trivial/runs HTTP/1.1\r\nContent-Length: ten", id="nan"
        ),
        pytest.param(
            b"POST /api/v1/pipelines/trivial/runs HTTP/1.1\r\n"
            b"Content-Length: 3\r\nContent-Length: 5",
            id="two-lengths",
        ),
        pytest.param(b"GET /api/v1/pipelines?" + b"q" * (1 << 20) + b" HTTP/1.1", id="1MB-query"),
    ],
)
def test_a_request_that_is_not_http_is_refused_in_the_apis_format(
    strict: Server, request_bytes: bytes
) -> None:
    with connect(strict) as sock:
        sock.sendall(request_bytes + b"\r\nHost: 127.0.0.1\r\n\r\n{}")
        answer = read_until_closed(sock)
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/json"
    assert answer.json() == {"error": {"code": "invalid", "message": NOT_HTTP, "details": {}}}


def test_a_request_that_is_not_http_is_refused_with_a_page_outside_the_api(
    strict: Server,
) -> None:
    with connect(strict) as sock:
        sock.sendall(b"POST /pipelines/trivial/ HTTP/1.1\r\nContent-Length: ten\r\n\r\n")
        answer = read_until_closed(sock)
    assert answer.status == 400
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert b"The request cannot be read: it is not valid HTTP" in answer.body
