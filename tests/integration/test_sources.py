"""Inputs that do not come with the request: the outputs of an earlier run (and, over the
API, URLs and data files), through the one way in, :func:`gristmill.app.submission.submit`."""

from __future__ import annotations

import hashlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import RunOutputs, TextInput, UrlInput
from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from gristmill.store.records import Failure, InputRecord, Report


def report(service: Service) -> str:
    run_id = submit("reports", [TextInput("a\nb\nc")], {"title": "T"}, service=service)
    run_inline(service, run_id)
    return run_id


def test_an_earlier_runs_outputs_become_the_inputs_of_a_new_run(service: Service) -> None:
    earlier = report(service)
    run_id = submit("any-source", [RunOutputs(earlier)], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.result("list_inputs") == [
        {
            "name": "report.txt",
            "kind": "run",
            "source": f"run {earlier}: WriteReport/report.txt",
            "text": "T\n3 lines\n",
        },
        {
            "name": "counts.csv",
            "kind": "run",
            "source": f"run {earlier}: WriteReport/tables/counts.csv",
            "text": "lines\n3\n",
        },
    ]


def test_the_outputs_of_one_step_only(service: Service) -> None:
    earlier = report(service)
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(earlier, step="BrokenContext")], service=service)
    assert refused.value.errors == {
        "inputs": [f"step 'BrokenContext' of run {earlier} has no output files"]
    }


def test_a_run_that_has_not_succeeded_is_refused(service: Service) -> None:
    queued = submit("trivial", service=service)
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(queued)], service=service)
    assert refused.value.errors == {
        "inputs": [f"run {queued} has not succeeded (it is queued); use a run that has"]
    }


def test_an_unknown_run_is_refused(service: Service) -> None:
    unknown = "00000000-0000-4000-8000-000000000000"
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [RunOutputs(unknown)], service=service)
    assert refused.value.errors == {"inputs": [f"no run with id {unknown!r}"]}


def test_a_pipeline_that_does_not_take_run_outputs_refuses_them(service: Service) -> None:
    earlier = report(service)
    with pytest.raises(SubmissionError) as refused:
        submit("json-only", [RunOutputs(earlier)], service=service)
    assert type(refused.value) is SubmissionError  # not too large, not an unknown pipeline
    assert list(refused.value.errors) == ["inputs"]


# -- URLs ------------------------------------------------------------------------------------


class Files(BaseHTTPRequestHandler):
    """Serves ``/poem.txt`` (and a 10 KiB ``/big.txt``), counting the requests."""

    requests: list[str] = []

    def do_GET(self) -> None:
        Files.requests.append(self.path)
        body = {"/poem.txt": b"the mill grinds\n", "/big.txt": b"x" * 10240}.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def files() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    Files.requests = []
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def allowing_loopback(service: Service) -> Service:
    return replace(service, settings=replace(service.settings, fetch_allow=("127.0.0.1/32",)))


def test_a_url_input_is_recorded_at_submission_and_fetched_by_the_worker(
    service: Service, files: str
) -> None:
    service = allowing_loopback(service)
    run_id = submit("any-source", [UrlInput(f"{files}/poem.txt")], service=service)
    (recorded,) = get_run(run_id, service=service).run.inputs
    assert (recorded.name, recorded.kind, recorded.source) == (
        "poem.txt",
        "url",
        f"{files}/poem.txt",
    )
    assert recorded.awaiting_fetch
    assert Files.requests == []  # no request thread waited for the server
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    (stored,) = status.run.inputs
    assert (stored.name, stored.size, stored.media_type) == ("poem.txt", 16, "text/plain")
    assert stored.sha256 == hashlib.sha256(b"the mill grinds\n").hexdigest()
    assert status.result("list_inputs")[0]["text"] == "the mill grinds\n"
    lines = [line.text for line in service.store.read_log(run_id)]
    assert f"fetched {files}/poem.txt as poem.txt (16 bytes)" in lines


def test_only_the_current_attempt_may_record_fetched_inputs(service: Service, files: str) -> None:
    service = allowing_loopback(service)
    run_id = submit("any-source", [UrlInput(f"{files}/poem.txt")], service=service)
    (first,) = service.store.claim("w1", queues=None, lease=30, run_id=run_id)
    service.store.release(first, Report())  # taken over: released and claimed again
    (second,) = service.store.claim("w2", queues=None, lease=30, run_id=run_id)
    fetched = InputRecord("poem.txt", "runs/x/inputs/0-poem.txt", 16, "ab" * 32, "text/plain")
    assert not service.store.save_inputs(first, {0: fetched}, Report(), lease=30)
    assert get_run(run_id, service=service).run.inputs[0].awaiting_fetch
    assert service.store.save_inputs(second, {0: fetched}, Report(), lease=30)
    (recorded,) = get_run(run_id, service=service).run.inputs
    assert (recorded.path, recorded.size, recorded.kind) == (fetched.path, 16, "url")
    # End the run, so that no worker of a later test takes it up once its lease runs out.
    assert service.store.finish(second, RunState.FAILED, Report(), Failure("the test is over"))


def test_a_url_that_cannot_be_fetched_fails_the_run_naming_it(service: Service, files: str) -> None:
    service = allowing_loopback(service)
    run_id = submit("any-source", [UrlInput(f"{files}/missing.txt")], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    assert status.error == f"{files}/missing.txt: the server answered 404 Not Found"


def test_a_url_whose_server_never_answers_fails_the_run_at_the_fetch_timeout(
    service: Service,
) -> None:
    # A listening socket nobody accepts from: connections open, and nothing is ever answered.
    with socket.create_server(("127.0.0.1", 0)) as silent:
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/data.csv"
        # A lease long enough that no heartbeat falls in the second waited (the watchdog's
        # thread would open a database connection of its own, left to the garbage collector).
        settings = replace(
            service.settings,
            fetch_allow=("127.0.0.1/32",),
            fetch_timeout=1.0,
            lease_seconds=30.0,
        )
        service = replace(service, settings=settings)
        run_id = submit("any-source", [UrlInput(url)], service=service)
        run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    assert status.error == f"{url}: the download did not finish within 1 second"


def test_a_host_name_of_a_private_address_fails_the_run_unfetched(
    service: Service, files: str
) -> None:
    url = files.replace("127.0.0.1", "localhost") + "/poem.txt"
    run_id = submit("any-source", [UrlInput(url)], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    assert status.error == (
        f"{url}: localhost has the address 127.0.0.1, which is not a public address; "
        "only public addresses can be fetched"
    )
    assert Files.requests == []


def test_a_url_on_a_private_address_is_refused_and_nothing_is_stored(
    service: Service, files: str
) -> None:
    before = set((service.storage.root / "runs").glob("*"))
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [UrlInput(f"{files}/poem.txt")], service=service)
    assert refused.value.errors == {
        "inputs": [
            f"{files}/poem.txt: 127.0.0.1 is not a public address; "
            "only public addresses can be fetched"
        ]
    }
    assert Files.requests == []
    assert set((service.storage.root / "runs").glob("*")) == before


def test_a_url_over_the_size_limit_fails_the_run_as_too_large(service: Service, files: str) -> None:
    service = allowing_loopback(service)
    run_id = submit("any-source", [UrlInput(f"{files}/big.txt")], service=service)
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == RunState.FAILED
    assert status.error == f"{files}/big.txt: the file is larger than the limit of 4 KiB"


def test_a_pipeline_that_takes_no_urls_refuses_one_without_fetching_it(
    service: Service, files: str
) -> None:
    with pytest.raises(SubmissionError) as refused:
        submit("json-only", [UrlInput(f"{files}/poem.txt")], service=allowing_loopback(service))
    assert refused.value.errors == {
        "inputs": [f"{files}/poem.txt: this pipeline does not take url inputs (it takes: json)"]
    }
    assert Files.requests == []
