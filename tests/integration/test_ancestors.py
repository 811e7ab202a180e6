"""Ancestor runs on each database: named by the user (Python, API) or chosen as the previous
run of the same source, checked at submission, and read by steps to compare with."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import Entry, get_run, submit, submit_many
from gristmill.authoring.inputs import TextInput
from gristmill.errors import SubmissionError
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.api import error
from tests.integration.test_access import API, browser, make_user
from tests.integration.test_web import page, submitted_from

if TYPE_CHECKING:
    from django.test import Client
    from ninja.testing import TestClient


def finished(service: Service, pipeline: str, text: str, **kw: Any) -> str:
    run_id = submit(pipeline, [TextInput(text, name="data.txt")], service=service, **kw)
    run_inline(service, run_id)
    return run_id


def refusal(service: Service, pipeline: str, ancestor: str) -> list[str]:
    with pytest.raises(SubmissionError) as refused:
        submit(pipeline, [TextInput("x")], ancestor=ancestor, service=service)
    return refused.value.errors["ancestor"]


# -- named by the user ------------------------------------------------------------------


def test_a_step_reads_the_ancestors_results_and_inputs(service: Service) -> None:
    earlier = finished(service, "compared", "a\nb\n")

    later = finished(service, "compared", "a\nb\nc\nd\n", ancestor=earlier)

    status = get_run(later, service=service)
    assert status.state == RunState.SUCCEEDED
    assert status.run.ancestor_id == earlier
    assert status.result("line_count") == {
        "lines": 4,
        "ancestor": earlier,
        "change": 2,
        "earlier_input": "a\nb\n",
        "earlier_outputs": [],
    }


def test_without_an_ancestor_a_step_sees_none(service: Service) -> None:
    run_id = finished(service, "compared", "a\n")
    assert get_run(run_id, service=service).result("line_count") == {"lines": 1, "ancestor": None}


@pytest.mark.parametrize("form", ["{id}", "/runs/{id}/", "https://mill.example/runs/{id}/"])
def test_an_ancestor_is_named_by_its_id_or_its_address(service: Service, form: str) -> None:
    earlier = finished(service, "compared", "a\n")
    later = finished(service, "compared", "a\n", ancestor=form.format(id=earlier))
    assert get_run(later, service=service).run.ancestor_id == earlier


def test_an_ancestor_must_exist_be_a_run_address_and_have_succeeded(service: Service) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert refusal(service, "compared", missing) == [f"no run with id {missing!r}"]
    assert refusal(service, "compared", "yesterday") == [
        "'yesterday' is neither a run id nor a run's address"
    ]
    queued = submit("compared", [TextInput("x")], service=service)
    assert refusal(service, "compared", queued) == [
        f"run {queued} has not succeeded (it is queued); choose a run that has"
    ]


def test_an_ancestor_must_be_of_the_same_pipeline_or_one_the_author_allows(
    service: Service,
) -> None:
    other = finished(service, "compared-auto", "a\n")
    assert refusal(service, "compared", other) == [
        f"run {other} is a run of 'compared-auto'; the ancestor of a run of 'compared' must "
        "be a run of 'compared'"
    ]
    allowed = finished(service, "compared", "a\n")
    later = finished(service, "compared-other", "a\nb\n", ancestor=allowed)
    assert get_run(later, service=service).result("line_count")["change"] == 1


def test_an_ancestor_that_expired_meanwhile_fails_the_step_saying_so(service: Service) -> None:
    earlier = finished(service, "compared", "a\n")
    later = submit("compared", [TextInput("b")], ancestor=earlier, service=service)
    assert service.store.expire(earlier, reason="test")

    run_inline(service, later)

    status = get_run(later, service=service)
    assert status.state == RunState.FAILED
    assert status.error == (
        f"the ancestor run {earlier} has expired: its results and files are gone; submit this "
        "run again with another ancestor, or none"
    )


def test_each_entry_of_a_bulk_submission_names_its_own_ancestor(service: Service) -> None:
    earlier = finished(service, "compared", "a\n")
    with pytest.raises(SubmissionError) as refused:
        submit_many(
            "compared",
            [Entry([TextInput("x")], ancestor=earlier), Entry([TextInput("x")], ancestor="no")],
            service=service,
        )
    assert refused.value.errors == {
        "entries.1.ancestor": ["'no' is neither a run id nor a run's address"]
    }


# -- the previous run of the same source ------------------------------------------------


def test_the_previous_run_of_the_same_source_and_owner_is_the_ancestor(service: Service) -> None:
    owner, other = make_user(), make_user()
    first = finished(service, "compared-auto", "a\n", owner_id=owner.pk)
    failed_later = submit("compared-auto", [TextInput("b", name="data.txt")], service=service)
    second = finished(service, "compared-auto", "a\nb\n", owner_id=owner.pk)
    third = finished(service, "compared-auto", "a\nb\nc\n", owner_id=owner.pk)
    elsewhere = submit(
        "compared-auto", [TextInput("z", name="other.txt")], owner_id=owner.pk, service=service
    )
    strangers = finished(service, "compared-auto", "a\n", owner_id=other.pk)
    anonymous = finished(service, "compared-auto", "a\n")

    def ancestor(run_id: str) -> str | None:
        return get_run(run_id, service=service).run.ancestor_id

    assert ancestor(first) is None
    assert ancestor(second) == first
    assert ancestor(third) == second  # the most recent succeeded one
    assert get_run(third, service=service).result("line_count")["change"] == 1
    assert ancestor(elsewhere) is None  # another file name: another source
    assert ancestor(strangers) is None  # another owner
    assert ancestor(anonymous) is None  # no account: no previous runs to look up
    assert ancestor(failed_later) is None


def test_a_named_ancestor_takes_precedence_over_the_previous_run(service: Service) -> None:
    owner = make_user()
    first = finished(service, "compared-auto", "a\n", owner_id=owner.pk)
    finished(service, "compared-auto", "a\n", owner_id=owner.pk)
    chosen = finished(service, "compared-auto", "a\n", owner_id=owner.pk, ancestor=first)
    assert get_run(chosen, service=service).run.ancestor_id == first


# -- over the API and on the results ----------------------------------------------------


def test_the_api_takes_an_ancestor_and_shows_it_with_a_link(
    service: Service, client: TestClient
) -> None:
    earlier = finished(service, "compared", "a\n")
    body = {"inputs": [{"kind": "text", "text": "a\nb\n"}], "ancestor": f"/runs/{earlier}/"}

    response = client.post("/pipelines/compared/runs", json=body)

    assert response.status_code == 201, response.json()
    later = response.json()["id"]
    run_inline(service, later)
    status = client.get(f"/runs/{later}").json()
    assert status["ancestor"] == {
        "id": earlier,
        "url": f"/runs/{earlier}/",
        "status_url": f"/api/v1/runs/{earlier}",
    }
    assert client.get(f"/runs/{earlier}").json()["ancestor"] is None
    contexts = {
        s["name"]: s["context"] for s in client.get(f"/runs/{later}/results").json()["steps"]
    }
    assert contexts["compare"] == {"comparison": f"+1 lines since run {earlier}"}


def test_an_ancestor_the_caller_may_not_see_is_refused_as_unknown(
    service: Service, site: None
) -> None:
    owner = make_user()
    private = finished(service, "compared", "a\n", owner_id=owner.pk)
    body = json.dumps({"inputs": [{"kind": "text", "text": "a"}], "ancestor": private})

    answer = browser().post(f"{API}/pipelines/compared/runs", body, content_type="application/json")

    assert answer.status_code == 400
    message = f"no run with id {private!r}"
    assert answer.json() == error("invalid", f"ancestor: {message}", {"ancestor": [message]})
    mine = browser(owner).post(
        f"{API}/pipelines/compared/runs", body, content_type="application/json"
    )
    assert mine.status_code == 201


def test_a_refused_ancestor_is_named_at_its_field(client: TestClient) -> None:
    body = {"inputs": [{"kind": "text", "text": "a"}], "ancestor": "last week"}
    response = client.post("/pipelines/compared/runs", json=body)
    assert response.status_code == 400
    message = "'last week' is neither a run id nor a run's address"
    assert response.json() == error("invalid", f"ancestor: {message}", {"ancestor": [message]})


# -- the web pages ----------------------------------------------------------------------


def test_the_form_names_an_ancestor_and_the_run_page_links_to_it(
    service: Service, web: Client
) -> None:
    earlier = finished(service, "compared", "a\n")

    response = web.post("/pipelines/compared/", {"text": "a\nb\n", "ancestor": f"/runs/{earlier}/"})

    later = submitted_from(response)
    assert get_run(later, service=service).run.ancestor_id == earlier
    run_inline(service, later)
    html = page(web.get(f"/runs/{later}/"))
    assert html.one("#run-ancestor a").attrs["href"] == f"/runs/{earlier}/"
    assert f"+1 lines since run {earlier}" in html.one("main").text


def test_a_refused_ancestor_is_shown_at_its_field(service: Service, web: Client) -> None:
    queued = submit("compared", [TextInput("x")], service=service)
    response = web.post("/pipelines/compared/", {"text": "a", "ancestor": queued})
    assert response.status_code == 400
    assert page(response).texts("#field-ancestor .field-error") == [
        f"run {queued} has not succeeded (it is queued); choose a run that has"
    ]
    response = web.post("/pipelines/compared/", {"text": "a", "ancestor": "nope"})
    assert page(response).texts("#field-ancestor .field-error") == [
        "'nope' is neither a run id nor a run's address"
    ]
