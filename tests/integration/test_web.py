"""The web pages on each database: the pipeline list, the submission form, and the run page.

Requests go through Django's test client and the real URLconf; runs are executed in this
process with the inline executor. Pages are read with a small HTML parser, so tests name
elements the way the browser tests and stylesheets do (``#field-top .field-error``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from gristmill.store.records import Report
from tests.integration.conftest import HOST

if TYPE_CHECKING:
    from django.test import Client

UNKNOWN_RUN = "00000000-0000-4000-8000-000000000000"
RUN_URL = re.compile(r"^/runs/([0-9a-f-]{36})/$")


# -- reading pages ------------------------------------------------------------------------

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source"}
SIMPLE = re.compile(r"^(?P<tag>[a-z0-9]+)?(?P<id>#[\w-]+)?(?P<classes>(?:\.[\w-]+)*)$")


@dataclass
class Node:
    """An element of a parsed page."""

    tag: str
    attrs: dict[str, str]
    children: list[Node | str] = field(default_factory=list)

    @property
    def text(self) -> str:
        text = "".join(c if isinstance(c, str) else c.text for c in self.children)
        if self.tag in ("pre", "textarea") and text.startswith("\n"):
            return text[1:]  # as browsers read it
        return text

    def walk(self) -> Iterator[Node]:
        for child in self.children:
            if isinstance(child, Node):
                yield child
                yield from child.walk()

    def matches(self, simple: str) -> bool:
        match = SIMPLE.match(simple)
        assert match, f"unsupported selector {simple!r}"
        if match["tag"] and self.tag != match["tag"]:
            return False
        if match["id"] and self.attrs.get("id") != match["id"][1:]:
            return False
        classes = self.attrs.get("class", "").split()
        return all(c in classes for c in match["classes"].split(".")[1:])

    def select(self, selector: str) -> list[Node]:
        """The elements matching a CSS selector of tags, ids and classes (descendants only)."""
        found = [self]
        for part in selector.split():
            found = [node for parent in found for node in parent.walk() if node.matches(part)]
        return list({id(node): node for node in found}.values())

    def one(self, selector: str) -> Node:
        (node,) = self.select(selector)
        return node

    def texts(self, selector: str) -> list[str]:
        return [" ".join(node.text.split()) for node in self.select(selector)]


class _Builder(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#document", {})
        self.open = [self.root]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {name: value or "" for name, value in attrs})
        self.open[-1].children.append(node)
        if tag not in VOID:
            self.open.append(node)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.open[-1].children.append(Node(tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag: str) -> None:
        for depth in range(len(self.open) - 1, 0, -1):
            if self.open[depth].tag == tag:
                del self.open[depth:]
                return

    def handle_data(self, data: str) -> None:
        self.open[-1].children.append(data)


def csrf_token(html: Node) -> str:
    (token,) = [
        node.attrs["value"]
        for node in html.select("form#submit-form input")
        if node.attrs.get("name") == "csrfmiddlewaretoken"
    ]
    return token


def page(response: Any) -> Node:
    builder = _Builder()
    builder.feed(response.content.decode())
    return builder.root


# -- fixtures and helpers -----------------------------------------------------------------


@pytest.fixture
def greeting_template(tmp_path: Path) -> Iterator[None]:
    """The template the ``tabular`` pipeline's ``Greet`` step names."""
    from django.conf import settings
    from django.test import override_settings

    folder = tmp_path / "templates" / "web_tests"
    folder.mkdir(parents=True)
    (folder / "greeting.html").write_text(
        '<p class="greeting">{{ context.greeting }} in step {{ step.name }} of run {{ run.id }}</p>'
    )
    engine = {**settings.TEMPLATES[0], "DIRS": [str(tmp_path / "templates")]}
    with override_settings(TEMPLATES=[engine]):
        yield


def upload(name: str, data: bytes) -> Any:
    from django.core.files.uploadedfile import SimpleUploadedFile

    return SimpleUploadedFile(name, data, content_type="text/plain")


def submitted_from(response: Any) -> str:
    """The id of the run a form submission started, from its redirect."""
    assert response.status_code == 303, response.content.decode()
    match = RUN_URL.match(response["Location"])
    assert match, response["Location"]
    return match[1]


def finished(
    service: Service, pipeline: str, params: dict[str, Any] | None = None, **kw: Any
) -> str:
    run_id = submit(pipeline, kw.get("inputs", ()), params, service=service)
    run_inline(service, run_id)
    return run_id


def run_page(web: Client, run_id: str) -> Node:
    response = web.get(f"/runs/{run_id}/")
    assert response.status_code == 200
    return page(response)


# -- the pipeline list --------------------------------------------------------------------


def test_the_list_links_each_pipeline_to_its_form_with_its_description(web: Client) -> None:
    response = web.get("/")
    assert response.status_code == 200
    html = page(response)
    assert html.texts("h1") == ["Pipelines"]
    items = {item.one("a").attrs["href"]: item for item in html.select("ul.pipelines li")}
    assert items["/pipelines/tabular/"].one("a").text == "Tables"
    assert items["/pipelines/tabular/"].texts("p") == ["Shows a result as tables."]
    assert items["/pipelines/trivial/"].one("a").text == "Trivial"


def test_every_page_is_an_accessible_document_with_the_stylesheet(web: Client) -> None:
    text = web.get("/").content.decode()
    assert '<html lang="en">' in text
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in text
    assert '<link rel="stylesheet" href="/static/gristmill/gristmill.css">' in text
    for asset in ("gristmill.css", "run.js"):
        response = web.get(f"/static/gristmill/{asset}")
        response.close()
        assert response.status_code == 200


# -- the submission form ------------------------------------------------------------------


def test_the_form_has_a_labelled_field_per_parameter_with_its_default(web: Client) -> None:
    html = page(web.get("/pipelines/tabular/"))
    form = html.one("form#submit-form")
    assert (form.attrs["method"], form.attrs["enctype"]) == ("post", "multipart/form-data")
    assert csrf_token(html)
    labels = {label.attrs["for"]: " ".join(label.text.split()) for label in form.select("label")}
    assert labels == {
        "id_files": "File:",
        "id_text": "Or paste JSON or text:",
        "id_top": "Top:",
        "id_ratio": "Ratio:",
        "id_loud": "Loud:",
        "id_colour": "Colour:",
        "id_label": "Label:",
        "id_exclude": "Exclude:",
        "id_ancestor": "Compare with an earlier run:",
    }
    top = form.one("#id_top")
    assert (top.attrs["type"], top.attrs["name"], top.attrs["value"]) == ("number", "top", "10")
    assert html.texts("#field-top .help") == ["How many rows to show"]
    assert form.one("#id_ratio").attrs["value"] == "0.5"
    assert form.one("#id_loud").attrs["type"] == "checkbox"
    assert "checked" in form.one("#id_loud").attrs
    options = form.select("#id_colour option")
    assert [(o.attrs["value"], "selected" in o.attrs) for o in options] == [
        ("red", True),
        ("green", False),
    ]
    assert form.one("#id_label").attrs["value"] == "table"
    assert form.one("#id_exclude").tag == "textarea"
    assert form.one("#id_text").attrs["name"] == "text"
    button = form.one("#submit-button")
    assert (button.attrs["type"], button.text) == ("submit", "Run")


def test_the_file_input_accepts_the_pipelines_extensions_and_count(web: Client) -> None:
    picky = page(web.get("/pipelines/picky/")).one("#id_files")
    assert (picky.attrs["type"], picky.attrs["name"]) == ("file", "files")
    assert picky.attrs["accept"] == ".txt,.csv"
    assert "multiple" in picky.attrs
    trivial = page(web.get("/pipelines/trivial/")).one("#id_files")
    assert "accept" not in trivial.attrs
    assert "multiple" not in trivial.attrs


def test_a_pipeline_that_takes_no_files_offers_only_the_text_field(web: Client) -> None:
    html = page(web.get("/pipelines/json-only/"))
    assert html.select("#id_files") == []
    assert html.one("#id_text").tag == "textarea"


def test_an_unknown_pipeline_has_no_form(web: Client) -> None:
    response = web.get("/pipelines/nope/")
    assert response.status_code == 404
    assert page(response).texts("h1") == ["Not found"]


def test_a_submission_starts_a_run_and_redirects_to_its_page(service: Service, web: Client) -> None:
    response = web.post("/pipelines/trivial/", {"value": "5"})
    run_id = submitted_from(response)
    run = get_run(run_id, service=service).run
    assert (run.pipeline, run.state, run.params) == (
        "trivial",
        "queued",
        {"control": "", "value": 5},
    )
    assert web.get(response["Location"]).status_code == 200


def test_fields_left_empty_keep_their_defaults_and_typed_values_are_converted(
    service: Service, web: Client
) -> None:
    data = {"top": "3", "ratio": "0.25", "colour": "green", "label": "", "exclude": '["a"]'}
    run_id = submitted_from(web.post("/pipelines/tabular/", data))
    assert get_run(run_id, service=service).run.params == {
        "top": 3,
        "ratio": 0.25,
        "loud": False,  # an unticked box is false, whatever the default
        "colour": "green",
        "label": "table",
        "exclude": ["a"],
    }


def test_uploaded_files_and_pasted_text_are_the_runs_inputs(service: Service, web: Client) -> None:
    files = [upload("a.txt", b"one"), upload("b.csv", b"x,y")]
    run_id = submitted_from(web.post("/pipelines/picky/", {"files": files}))
    inputs = get_run(run_id, service=service).run.inputs
    assert [(i.name, i.kind, i.size) for i in inputs] == [
        ("a.txt", "file", 3),
        ("b.csv", "file", 3),
    ]
    run_id = submitted_from(web.post("/pipelines/picky/", {"text": "typed words"}))
    inputs = get_run(run_id, service=service).run.inputs
    assert [(i.name, i.kind, i.size) for i in inputs] == [("input.txt", "text", 11)]


def test_pasted_text_is_json_when_the_pipeline_takes_no_text(service: Service, web: Client) -> None:
    run_id = submitted_from(web.post("/pipelines/json-only/", {"text": '{"a": [1, 2]}'}))
    (stored,) = get_run(run_id, service=service).run.inputs
    assert (stored.name, stored.kind) == ("input.json", "json")
    assert service.storage.path(stored.path).read_text() == '{"a": [1, 2]}'


def test_the_paste_box_says_what_the_pipeline_takes(web: Client) -> None:
    boxes = {}
    for name in ("json-only", "picky", "tabular"):
        html = page(web.get(f"/pipelines/{name}/"))
        help_texts = html.texts("#field-text .help")
        (label,) = [x for x in html.select("#field-text label") if x.attrs["for"] == "id_text"]
        boxes[name] = (" ".join(label.text.split()), help_texts)
    assert boxes == {
        "json-only": ("Or paste JSON:", ["It must be valid JSON."]),
        "picky": ("Or paste text:", []),
        "tabular": (
            "Or paste JSON or text:",
            ["Valid JSON is submitted as JSON (input.json), anything else as text (input.txt)."],
        ),
    }


def test_pasted_json_is_json_and_other_text_is_text_where_both_are_taken(
    service: Service, web: Client
) -> None:
    kinds = []
    for text in ('{"rows": [1, 2]}', "not json"):
        run_id = submitted_from(web.post("/pipelines/tabular/", {"text": text}))
        (stored,) = get_run(run_id, service=service).run.inputs
        kinds.append((stored.name, stored.kind, service.storage.path(stored.path).read_text()))
    assert kinds == [
        ("input.json", "json", '{"rows": [1, 2]}'),
        ("input.txt", "text", "not json"),
    ]


def test_a_bad_parameter_is_shown_at_its_field_and_the_entries_are_kept(web: Client) -> None:
    response = web.post("/pipelines/tabular/", {"top": "0", "label": "mine", "ratio": "2"})
    assert response.status_code == 400
    html = page(response)
    assert html.texts("#field-top .field-error") == ["Input should be greater than or equal to 1"]
    assert html.select("#field-label .field-error") == []
    assert html.select("#form-errors") == []
    assert html.one("#id_top").attrs["value"] == "0"
    assert html.one("#id_label").attrs["value"] == "mine"
    assert html.one("#id_ratio").attrs["value"] == "2"


def test_a_value_of_the_wrong_type_is_shown_at_its_field(web: Client) -> None:
    response = web.post("/pipelines/tabular/", {"exclude": "[nope"})
    assert response.status_code == 400
    assert page(response).texts("#field-exclude .field-error") == [
        "this is not valid JSON: Expecting value: line 1 column 2 (char 1)"
    ]


def test_a_null_character_in_a_json_parameter_is_refused(web: Client) -> None:
    response = web.post("/pipelines/tabular/", {"exclude": '["a\\u0000"]'})
    assert response.status_code == 400
    assert page(response).texts("#field-exclude .field-error") == [
        "Null characters are not allowed."
    ]


def test_a_problem_with_no_field_is_shown_at_the_top_of_the_form(web: Client) -> None:
    response = web.post("/pipelines/tabular/", {"top": "200", "loud": "on"})
    assert response.status_code == 400
    html = page(response)
    assert html.texts("#form-errors") == ["Value error, a loud table shows at most 100 rows"]
    assert html.select(".field-error") == []


def test_a_file_type_the_pipeline_does_not_accept_is_shown_at_the_file_field(
    web: Client,
) -> None:
    response = web.post("/pipelines/picky/", {"files": [upload("data.json", b"{}")]})
    assert response.status_code == 400
    assert page(response).texts("#field-files .field-error") == [
        "data.json: files of this type are not accepted (accepted: .txt, .csv)"
    ]


def test_a_missing_input_is_shown_at_the_file_field(web: Client) -> None:
    response = web.post("/pipelines/picky/", {"value": "2"})
    assert response.status_code == 400
    html = page(response)
    assert html.texts("#field-files .field-error") == ["this pipeline needs an input; 0 given"]
    assert html.one("#id_value").attrs["value"] == "2"


def test_pasted_text_that_is_not_json_is_shown_at_the_text_field(web: Client) -> None:
    response = web.post("/pipelines/json-only/", {"text": "{bad"})
    assert response.status_code == 400
    html = page(response)
    assert html.texts("#field-text .field-error") == [
        "this is not valid JSON: Expecting property name enclosed in double quotes: "
        "line 1 column 2 (char 1)"
    ]
    assert html.one("#id_text").text == "{bad"


def test_an_input_over_the_size_limit_is_refused_as_too_large(
    service: Service, web: Client
) -> None:
    response = web.post("/pipelines/picky/", {"files": [upload("big.txt", b"x" * 17)]})
    assert response.status_code == 413
    assert page(response).texts("#field-files .field-error") == [
        "big.txt: the file is larger than this pipeline's limit of 16 bytes"
    ]


def test_the_form_is_refused_without_its_csrf_token(web: Client) -> None:
    from django.test import Client

    strict = Client(enforce_csrf_checks=True, HTTP_HOST=HOST)
    assert strict.post("/pipelines/trivial/", {"value": "1"}).status_code == 403
    token = csrf_token(page(strict.get("/pipelines/trivial/")))
    response = strict.post("/pipelines/trivial/", {"value": "1", "csrfmiddlewaretoken": token})
    submitted_from(response)


# -- the run page -------------------------------------------------------------------------


def test_a_queued_run_shows_its_steps_and_waits_with_the_live_parts(
    service: Service, web: Client
) -> None:
    run_id = submit("failing", service=service)
    html = run_page(web, run_id)
    main = html.one("main#run")
    assert (main.attrs["data-run-id"], main.attrs["data-state"]) == (run_id, "queued")
    assert main.attrs["data-log-after"] == "0"
    assert html.texts("h1") == ["Failing"]
    state = html.one("#run-state")
    assert (state.text, state.attrs["class"]) == ("queued", "state state-queued")
    steps = html.select("ol#steps li")
    assert [(s.attrs["id"], s.attrs["class"]) for s in steps] == [
        ("step-one", "step state-pending"),
        ("step-bad_data", "step state-pending"),
        ("step-after", "step state-pending"),
    ]
    assert "value" not in html.one("#run-progress").attrs  # indeterminate
    assert html.texts("#run-stage") == ["Waiting for a worker."]
    assert html.one("#run-log").text == ""
    assert [s.attrs["src"] for s in html.select("script")] == ["/static/gristmill/run.js"]
    assert html.select("#results") == [] and html.select("#run-error") == []
    assert html.texts("#run-expiry")[0].startswith("Kept until ")


def test_a_running_run_shows_its_stage_progress_and_log(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    (claim,) = service.store.claim("web-test", queues=None, lease=30, run_id=run_id)
    now = datetime.now(UTC).timestamp()
    live = Report(
        current_step="one",
        stage="halfway",
        progress_done=5,
        progress_total=10,
        logs=[(now, "one", "log", "first <line>"), (now, "one", "log", "second line")],
    )
    try:
        service.store.flush(claim, live, lease=30)
        html = run_page(web, run_id)
    finally:
        service.store.finish(claim, RunState.CANCELLED, Report())
    assert html.one("#run-state").text == "running"
    assert html.one("#step-one").attrs["class"] == "step state-running"
    progress = html.one("#run-progress")
    assert (progress.attrs["max"], progress.attrs["value"]) == ("10", "5")
    assert html.texts("#run-stage") == ["Running one: halfway"]
    assert html.one("#run-log").text == "first <line>\nsecond line\n"
    last = service.store.read_log(run_id)[-1].id
    assert html.one("main#run").attrs["data-log-after"] == str(last)


def test_a_succeeded_run_shows_each_steps_context_as_tables(
    service: Service, web: Client, greeting_template: None
) -> None:
    run_id = finished(service, "tabular", {"label": "words"})
    html = run_page(web, run_id)
    assert html.one("#run-state").text == "succeeded"
    assert html.select("#run-progress") == [] and html.select("script") == []
    result = html.one("article#result-tabulate")
    assert result.texts("h3") == ["Tabulate"]
    kv = result.select("table.kv")[0]
    assert [
        row.texts("th")[0] for row in kv.select("tbody")[0].children if isinstance(row, Node)
    ] == [
        "label",
        "rows",
        "tags",
        "nested",
        "missing",
    ]
    rows = result.one("table.rows")
    assert rows.texts("thead th") == ["word", "count"]
    assert [r.texts("td") for r in rows.select("tbody tr")] == [["mill", "3"], ["grist", "2"]]
    assert result.texts("ul li") == ["<b>plain</b>", "text"]  # escaped, not markup
    assert result.select("b") == []
    assert "level" in result.texts("table.kv dl.nested dl.nested dt")
    greeting = html.one("article#result-Greet")
    assert greeting.texts("h3") == ["Greeting"]
    assert greeting.texts("p.greeting") == [f"hello from red in step Greet of run {run_id}"]
    assert html.texts("#outputs p") == ["This run made no files to download."]
    assert html.select("#download-all") == []


def test_a_succeeded_run_links_its_outputs_and_shows_a_context_that_failed(
    service: Service, web: Client
) -> None:
    from gristmill.authoring.inputs import TextInput

    run_id = finished(service, "reports", {"title": "T"}, inputs=[TextInput("a\nb", "w.txt")])
    html = run_page(web, run_id)
    assert html.texts("#result-WriteReport td") == ["T: 2 lines of w.txt"]
    (failed,) = html.texts("#result-BrokenContext td")
    assert failed.startswith("internal error, reference ")
    links = [(a.attrs["href"], a.text) for a in html.select("#outputs a.output")]
    base = f"/api/v1/runs/{run_id}/outputs"
    assert links == [
        (f"{base}/WriteReport/report.txt", "report.txt"),
        (f"{base}/WriteReport/tables/counts.csv", "tables/counts.csv"),
    ]
    assert html.one("#download-all").attrs["href"] == f"/api/v1/runs/{run_id}/outputs.zip"
    assert html.one("#download-all").text == "Download all (zip)"
    download = web.get(links[0][0])
    download.close()
    assert download.status_code == 200


def test_a_context_worded_like_an_internal_error_is_still_shown_with_its_template(
    service: Service,
    web: Client,
    greeting_template: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a step whose own context reads like a context that could not be built
    words = {"error": "internal error, reference 0123456789ab"}
    greet = type(service.registry.get("tabular").step("Greet"))
    monkeypatch.setattr(greet, "context", lambda self, run, result: words)
    template = tmp_path / "templates" / "web_tests" / "greeting.html"
    template.write_text('<p class="greeting">the task says: {{ context.error }}</p>')
    # When its run's page is shown
    html = run_page(web, finished(service, "tabular", {"label": "words"}))
    # Then its template shows it: only a context that really failed is recognised as one
    assert html.texts("#result-Greet p.greeting") == [
        "the task says: internal error, reference 0123456789ab"
    ]


def test_a_failed_run_shows_the_task_errors_message(service: Service, web: Client) -> None:
    run_id = finished(service, "failing")
    html = run_page(web, run_id)
    assert html.texts("#run-error") == ["row 3 has no 'id' field"]
    assert html.one("#run-error").attrs["role"] == "alert"
    assert html.one("#step-bad_data").attrs["class"] == "step state-failed"
    assert html.select("#results") == []


def test_an_internal_error_shows_its_reference_and_no_traceback(
    service: Service, web: Client
) -> None:
    run_id = finished(service, "internal")
    response = web.get(f"/runs/{run_id}/")
    reference = get_run(run_id, service=service).run.error_ref
    assert page(response).texts("#run-error") == [f"internal error, reference {reference}"]
    assert b"ZeroDivisionError" not in response.content
    assert b"Traceback" not in response.content


def test_a_cancelled_run_says_so(service: Service, web: Client) -> None:
    run_id = submit("trivial", service=service)
    assert service.store.request_cancel(run_id)
    html = run_page(web, run_id)
    at = get_run(run_id, service=service).run.cancel_requested_at
    assert html.texts("#run-error") == [
        f"This run was cancelled by someone who was not signed in on {at:%-d %B %Y, %H:%M:%S} "
        "UTC, before it started."
    ]
    assert html.one("#run-state").text == "cancelled"
    assert html.select("script") == []


def test_an_expired_run_says_when_its_files_were_removed(service: Service, web: Client) -> None:
    from gristmill.server.models import Run

    run_id = finished(service, "trivial")
    expiry = datetime(2030, 3, 4, 5, 6, tzinfo=UTC)
    alias = service.store.alias  # type: ignore[attr-defined]
    Run.objects.using(alias).filter(id=run_id).update(state="expired", expires_at=expiry)
    html = run_page(web, run_id)
    assert html.texts("#run-error") == [
        "This run expired on 4 March 2030, 05:06 UTC; its files were removed."
    ]
    # Once gone, the page says so once, with no "kept until" and no list of steps never run.
    assert html.texts("#run-expiry") == [] and html.select("#steps") == []


@pytest.mark.parametrize("run_id", [UNKNOWN_RUN, "not-a-uuid"])
def test_an_unknown_or_malformed_run_is_not_found(web: Client, run_id: str) -> None:
    response = web.get(f"/runs/{run_id}/")
    assert response.status_code == 404
    html = page(response)
    assert html.texts("h1") == ["Not found"]
    assert html.texts("#error-message") == [f"No run with id '{run_id}'."]


def test_a_parameter_named_like_an_input_field_is_renamed_in_the_form(
    databases: dict[str, Any],
) -> None:
    from pydantic import BaseModel

    from gristmill import Inputs, Pipeline, task
    from gristmill.authoring.inputs import TextInput
    from gristmill.server.web.forms import SubmissionForm

    class Clashing(BaseModel):
        text: str = "default"

    @task
    def noop(run: Any) -> None:
        return None

    pipeline = Pipeline("clashing", [noop], params=Clashing, inputs=Inputs(min_count=0))
    form = SubmissionForm(pipeline, {"text": "pasted", "param_text": "mine"}, {})
    assert form.is_valid(), form.errors
    assert form.params() == {"text": "mine"}
    assert form.inputs() == [TextInput("pasted")]
