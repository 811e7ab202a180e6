"""Inputs that do not come with the request: the outputs of an earlier run (and, over the
API, URLs and data files), through the one way in, :func:`gristmill.submission.submit`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.inputs import RunOutputs, TextInput, UrlInput
from gristmill.runs import RunState
from gristmill.service import Service
from gristmill.submission import get_run, submit


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
    assert refused.value.status == 400
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


def test_a_url_input_is_fetched_and_stored_with_its_digest(service: Service, files: str) -> None:
    service = allowing_loopback(service)
    run_id = submit("any-source", [UrlInput(f"{files}/poem.txt")], service=service)
    (stored,) = get_run(run_id, service=service).run.inputs
    assert (stored.name, stored.kind, stored.source, stored.size) == (
        "poem.txt",
        "url",
        f"{files}/poem.txt",
        16,
    )
    assert stored.media_type == "text/plain"
    run_inline(service, run_id)
    assert get_run(run_id, service=service).result("list_inputs")[0]["text"] == "the mill grinds\n"


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


def test_a_url_over_the_size_limit_is_refused_as_too_large(service: Service, files: str) -> None:
    with pytest.raises(SubmissionError) as refused:
        submit("any-source", [UrlInput(f"{files}/big.txt")], service=allowing_loopback(service))
    assert refused.value.status == 413
    assert refused.value.errors == {
        "inputs": [f"{files}/big.txt: the file is larger than the limit of 4 KiB"]
    }


def test_a_pipeline_that_takes_no_urls_refuses_one_without_fetching_it(
    service: Service, files: str
) -> None:
    with pytest.raises(SubmissionError) as refused:
        submit("json-only", [UrlInput(f"{files}/poem.txt")], service=allowing_loopback(service))
    assert refused.value.errors == {
        "inputs": [f"{files}/poem.txt: this pipeline does not take url inputs (it takes: json)"]
    }
    assert Files.requests == []
