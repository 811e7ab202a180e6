"""Inputs that name something on the server or the web, on each database: a stored data file,
an earlier run's outputs and a URL, given in a JSON submission, a multipart submission or the
submission form. What the caller may not see is refused like what does not exist, before
anything is stored.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from dataclasses import replace
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service, set_default_service
from gristmill.app.submission import get_run, submit
from gristmill.authoring.inputs import TextInput
from gristmill.executors.inline import run_inline
from tests.integration.test_access import bearer, browser, make_user
from tests.integration.test_web import page, submitted_from

if TYPE_CHECKING:
    from django.test import Client

RUNS = "/api/v1/pipelines/any-source/runs"
FORM = "/pipelines/any-source/"
UNKNOWN = "00000000-0000-4000-8000-000000000000"
URL_SCHEME = "only http:// and https:// URLs can be fetched"


def keep(service: Service, owner: Any, name: str, data: bytes) -> str:
    """Store a data file of ``owner``; return its id."""
    from gristmill.server import datafiles
    from gristmill.server.access import Caller

    caller = Caller(owner.pk, owner.username)
    return str(datafiles.create(caller, name, io.BytesIO(data), service=service).pk)


def report(service: Service, owner: Any = None) -> str:
    """A succeeded run of ``reports`` (outputs report.txt and counts.csv) owned by ``owner``."""
    run_id = submit(
        "reports",
        [TextInput("a\nb\nc")],
        {"title": "T"},
        owner_id=owner.pk if owner is not None else None,
        service=service,
    )
    run_inline(service, run_id)
    return run_id


def run_count() -> int:
    from gristmill.server.models import Run

    return Run.objects.count()


def submit_json(client: Client, inputs: list[dict[str, Any]], **headers: str) -> Any:
    return client.post(RUNS, {"inputs": inputs}, content_type="application/json", headers=headers)


def inputs_seen(service: Service, run_id: str) -> list[tuple[str, str, str]]:
    """(name, kind, text) of each input, as the run's step saw them."""
    run_inline(service, run_id)
    status = get_run(run_id, service=service)
    assert status.state == "succeeded", status.error
    return [(i["name"], i["kind"], i["text"]) for i in status.result("list_inputs")]


def refusal(field: str, message: str) -> tuple[int, Any]:
    """The answer to a refusal of one field: its status and body."""
    details = {field: [message]}
    return 400, {"error": {"code": "invalid", "message": f"{field}: {message}", "details": details}}


def answer(response: Any) -> tuple[int, Any]:
    return response.status_code, response.json()


# -- data files ----------------------------------------------------------------------------


def test_a_data_file_is_an_input_of_a_json_submission(site: Service) -> None:
    owner = make_user()
    file_id = keep(site, owner, "notes.txt", b"kept words")
    response = submit_json(browser(owner), [{"kind": "datafile", "id": file_id}])
    assert response.status_code == 201, response.json()
    run_id = response.json()["id"]
    run_inline(site, run_id)
    assert get_run(run_id, service=site).result("list_inputs") == [
        {
            "name": "notes.txt",
            "kind": "datafile",
            "source": f"data file {file_id}",
            "text": "kept words",
        }
    ]


def test_another_users_data_file_is_refused_and_nothing_is_stored(site: Service) -> None:
    file_id = keep(site, make_user(), "private.txt", b"secret")
    before = run_count()
    for hidden in (file_id, UNKNOWN, "not-an-id"):
        response = submit_json(
            browser(), [{"kind": "datafile", "id": hidden}], **bearer(make_user())
        )
        message = f"no data file with id {hidden!r}"
        assert answer(response) == refusal("inputs.0.id", message)
    assert run_count() == before


def test_staff_may_use_anyones_data_file(site: Service) -> None:
    file_id = keep(site, make_user(), "theirs.txt", b"shared")
    response = submit_json(browser(make_user(staff=True)), [{"kind": "datafile", "id": file_id}])
    assert inputs_seen(site, response.json()["id"]) == [("theirs.txt", "datafile", "shared")]


def test_an_anonymous_caller_is_asked_to_sign_in_to_use_data_files(site: Service) -> None:
    before = run_count()
    response = submit_json(browser(), [{"kind": "datafile", "id": UNKNOWN}])
    assert response.status_code == 401
    assert response.json()["error"]["message"] == (
        "sign in to use data files; send an API token (Authorization: Bearer ...)"
    )
    assert run_count() == before


def test_a_run_keeps_its_copy_of_a_data_file_deleted_later(site: Service) -> None:
    from gristmill.server import datafiles
    from gristmill.server.access import Caller

    owner = make_user()
    file_id = keep(site, owner, "notes.txt", b"kept words")
    run_id = submit_json(browser(owner), [{"kind": "datafile", "id": file_id}]).json()["id"]
    datafiles.delete(Caller(owner.pk, owner.username), file_id, service=site)
    assert inputs_seen(site, run_id) == [("notes.txt", "datafile", "kept words")]


# -- earlier runs ---------------------------------------------------------------------------


def test_an_earlier_runs_outputs_are_inputs_of_a_json_submission(site: Service) -> None:
    owner = make_user()
    earlier = report(site, owner)
    response = submit_json(browser(owner), [{"kind": "run", "run": earlier}])
    assert response.status_code == 201, response.json()
    assert inputs_seen(site, response.json()["id"]) == [
        ("report.txt", "run", "T\n3 lines\n"),
        ("counts.csv", "run", "lines\n3\n"),
    ]


def test_one_step_of_an_earlier_run_is_chosen_by_its_name(site: Service) -> None:
    earlier = report(site)
    response = submit_json(browser(), [{"kind": "run", "run": earlier, "step": "BrokenContext"}])
    message = f"step 'BrokenContext' of run {earlier} has no output files"
    assert answer(response) == (
        400,
        {"error": {"code": "invalid", "message": message, "details": {"inputs": [message]}}},
    )


def test_another_users_run_is_refused_and_nothing_is_stored(site: Service) -> None:
    earlier = report(site, make_user())
    before = run_count()
    for hidden in (earlier, UNKNOWN, "not-a-run"):
        response = submit_json(browser(), [{"kind": "run", "run": hidden}], **bearer(make_user()))
        message = f"no run with id {hidden!r}"
        assert answer(response) == refusal("inputs.0.run", message)
    assert run_count() == before


def test_an_anonymous_run_is_usable_by_whoever_has_its_id(site: Service) -> None:
    earlier = report(site)
    response = submit_json(browser(make_user()), [{"kind": "run", "run": earlier}])
    assert response.status_code == 201


# -- URLs -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ftp://example.org/data.csv", URL_SCHEME),
        ("file:///etc/passwd", URL_SCHEME),
        ("javascript:alert(1)", URL_SCHEME),
        ("http:///data.csv", "the URL has no host name"),
    ],
)
def test_a_url_that_is_not_http_or_https_is_refused(site: Service, url: str, problem: str) -> None:
    before = run_count()
    response = submit_json(browser(), [{"kind": "url", "url": url}])
    assert answer(response) == refusal("inputs.0.url", f"{url}: {problem}")
    assert run_count() == before


@pytest.fixture
def web_server(tmp_path: Path) -> Iterator[str]:
    """A local HTTP server of the files in ``tmp_path/www``; its base URL."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "data.txt").write_text("fetched words")

    class Quiet(SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), partial(Quiet, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_a_url_in_an_allowed_network_is_fetched_as_an_input(
    service: Service, web_server: str
) -> None:
    allowing = replace(service, settings=replace(service.settings, fetch_allow=("127.0.0.0/8",)))
    set_default_service(allowing)
    try:
        response = submit_json(browser(), [{"kind": "url", "url": f"{web_server}/data.txt"}])
    finally:
        set_default_service(None)
    assert response.status_code == 201, response.json()
    assert inputs_seen(allowing, response.json()["id"]) == [("data.txt", "url", "fetched words")]


# -- the shape of a submission --------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "field", "message"),
    [
        ({"kind": "datafile"}, "inputs.0.id", "is required for a datafile input"),
        ({"kind": "run", "id": UNKNOWN}, "inputs.0.id", "is not a field of a run input"),
        (
            {"kind": "url", "url": "https://example.org/", "name": "x"},
            "inputs.0.name",
            "is not a field of a url input",
        ),
        (
            {"kind": "file"},
            "inputs.0.kind",
            "upload files as multipart/form-data, in the field 'files'",
        ),
        (
            {"kind": "zip"},
            "inputs.0.kind",
            "unknown input kind 'zip' (use json, text, url, datafile, run or items)",
        ),
    ],
)
def test_a_malformed_input_is_refused_at_its_field(
    site: Service, item: dict[str, Any], field: str, message: str
) -> None:
    response = submit_json(browser(make_user()), [item])
    assert answer(response)[1]["error"]["details"][field] == [message]
    assert response.status_code == 400


# -- multipart submissions --------------------------------------------------------------------


def uploaded(name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/plain")


def test_a_multipart_submission_names_data_files_and_runs_after_its_files(
    site: Service,
) -> None:
    owner = make_user()
    file_id = keep(site, owner, "notes.txt", b"kept")
    earlier = report(site, owner)
    fields = {"files": uploaded("a.txt", b"sent"), "datafile": file_id, "run": earlier}
    response = browser().post(RUNS, fields, headers=bearer(owner))
    assert response.status_code == 201, response.json()
    assert inputs_seen(site, response.json()["id"]) == [
        ("a.txt", "file", "sent"),
        ("notes.txt", "datafile", "kept"),
        ("report.txt", "run", "T\n3 lines\n"),
        ("counts.csv", "run", "lines\n3\n"),
    ]


@pytest.mark.parametrize("field", ["datafile", "run", "url"])
def test_a_multipart_submission_naming_what_the_caller_may_not_see_is_refused(
    site: Service, field: str
) -> None:
    owner = make_user()
    hidden = {
        "datafile": keep(site, owner, "private.txt", b"secret"),
        "run": report(site, owner),
        "url": "ftp://example.org/data.csv",
    }[field]
    messages = {
        "datafile": f"no data file with id {hidden!r}",
        "run": f"no run with id {hidden!r}",
        "url": f"{hidden}: {URL_SCHEME}",
    }
    before = run_count()
    response = browser().post(RUNS, {field: hidden}, headers=bearer(make_user()))
    assert answer(response) == refusal(field, messages[field])
    assert run_count() == before


def test_an_unknown_multipart_field_names_the_fields_a_submission_has(site: Service) -> None:
    response = browser().post(RUNS, {"urls": "https://example.org/"})
    message = (
        "unknown field (a submission has 'files', 'url', 'datafile', 'run', 'params', "
        "'ancestor', 'notify_email' and 'webhook_url')"
    )
    assert answer(response) == refusal("urls", message)


# -- the submission form ---------------------------------------------------------------------


def test_the_form_offers_a_url_the_users_data_files_and_an_earlier_run(site: Service) -> None:
    owner = make_user()
    older = keep(site, owner, "older.csv", b"1")
    newer = keep(site, owner, "newer.csv", b"22")
    keep(site, make_user(), "theirs.csv", b"3")
    html = page(browser(owner).get(FORM))
    assert html.one("#id_url").attrs["name"] == "url"
    options = html.select("#id_datafile option")
    assert [o.attrs["value"] for o in options] == [newer, older]
    assert [o.text.split(" (")[0] for o in options] == ["newer.csv", "older.csv"]
    assert html.one("#id_run").attrs["name"] == "run"
    assert html.one("#datafiles-note a").attrs["href"] == "/datafiles/"


def test_the_form_asks_anonymous_visitors_to_sign_in_for_data_files(site: Service) -> None:
    html = page(browser().get(FORM))
    assert html.select("#id_datafile") == []
    link = html.one("#datafiles-note a")
    assert (link.text, link.attrs["href"]) == ("Sign in", "/sign-in/?next=/pipelines/any-source/")


def test_the_form_says_where_to_upload_when_the_user_has_no_data_files(site: Service) -> None:
    html = page(browser(make_user()).get(FORM))
    assert html.select("#id_datafile") == []
    assert html.texts("#datafiles-note") == [
        "You have no data files yet: upload one to use it in any run."
    ]


def test_a_form_with_a_data_file_and_an_earlier_runs_page_starts_a_run(site: Service) -> None:
    owner = make_user()
    file_id = keep(site, owner, "notes.txt", b"kept")
    earlier = report(site, owner)
    data = {"datafile": [file_id], "run": f"http://localhost/runs/{earlier}/"}
    run_id = submitted_from(browser(owner).post(FORM, data))
    assert inputs_seen(site, run_id) == [
        ("notes.txt", "datafile", "kept"),
        ("report.txt", "run", "T\n3 lines\n"),
        ("counts.csv", "run", "lines\n3\n"),
    ]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("url", "ftp://example.org/x", f"ftp://example.org/x: {URL_SCHEME}"),
        ("run", "last week's run", "give the id of a run, or the address of its page"),
        ("run", UNKNOWN, f"no run with id {UNKNOWN!r}"),
    ],
)
def test_a_refused_reference_is_shown_at_its_field(
    site: Service, field: str, value: str, message: str
) -> None:
    before = run_count()
    response = browser(make_user()).post(FORM, {field: value})
    assert response.status_code == 400
    assert page(response).texts(f"#field-{field} .field-error") == [message]
    assert run_count() == before


def test_another_users_run_is_not_found_from_the_form(site: Service) -> None:
    earlier = report(site, make_user())
    response = browser(make_user()).post(FORM, {"run": earlier})
    assert page(response).texts("#field-run .field-error") == [f"no run with id {earlier!r}"]


def test_another_users_data_file_cannot_be_chosen_in_the_form(site: Service) -> None:
    owner = make_user()
    keep(site, owner, "mine.txt", b"x")
    theirs = keep(site, make_user(), "theirs.txt", b"y")
    response = browser(owner).post(FORM, {"datafile": [theirs]})
    assert response.status_code == 400
    assert page(response).texts("#field-datafile .field-error") == [
        f"Select a valid choice. {theirs} is not one of the available choices."
    ]
