"""Who may use which pipeline and see which run, over the API (tokens, sessions) and the pages.

Runs made without signing in are readable by whoever holds their URL; a signed-in user's runs
are theirs and staff's; whatever a caller may not see answers exactly like what does not exist.
"""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import pytest

from gristmill.app.service import Service
from gristmill.app.submission import get_run, submit
from gristmill.executors.inline import run_inline
from gristmill.states import RunState
from tests.integration.test_web import HOST, page

if TYPE_CHECKING:
    from django.test import Client


API = "/api/v1"


def make_user(*, staff: bool = False, superuser: bool = False) -> Any:
    from django.contrib.auth import get_user_model

    name = f"user-{uuid.uuid4().hex[:8]}"
    return get_user_model().objects.create_user(
        name, password="correct horse", is_staff=staff or superuser, is_superuser=superuser
    )


def browser(user: Any = None, **kw: Any) -> Client:
    """A test client, signed in as ``user`` if given."""
    from django.test import Client

    client = Client(HTTP_HOST=HOST, **kw)
    if user is not None:
        client.force_login(user)
    return client


def bearer(user: Any) -> dict[str, str]:
    from gristmill.server.tokens import create_token

    return {"Authorization": f"Bearer {create_token(user.pk, 'tests')[1]}"}


def api_submit(client: Client, pipeline: str, **headers: str) -> Any:
    return client.post(
        f"{API}/pipelines/{pipeline}/runs", "{}", content_type="application/json", headers=headers
    )


def error_of(response: Any) -> tuple[int, str]:
    return response.status_code, response.json()["error"]["message"]


def not_found(run_id: str) -> tuple[int, str]:
    return 404, f"no run with id {run_id!r}"


RUN_PATHS = ["", "/log", "/results", "/outputs", "/outputs.zip"]


# -- runs: capability URLs and private runs -------------------------------------------------


def test_a_run_made_without_signing_in_is_readable_by_whoever_has_its_url(
    service: Service, site: None
) -> None:
    run_id = api_submit(browser(), "trivial").json()["id"]
    assert get_run(run_id, service=service).run.owner_id is None
    for client in (browser(), browser(make_user())):
        assert client.get(f"{API}/runs/{run_id}").status_code == 200
        assert client.get(f"/runs/{run_id}/").status_code == 200


def test_a_run_submitted_with_a_token_belongs_to_the_tokens_user(
    service: Service, site: None
) -> None:
    owner = make_user()
    response = api_submit(browser(), "trivial", **bearer(owner))
    assert response.status_code == 201
    assert get_run(response.json()["id"], service=service).run.owner_id == owner.pk


@pytest.mark.parametrize("suffix", RUN_PATHS)
def test_a_users_run_is_hidden_from_others_as_if_it_did_not_exist(
    service: Service, site: None, suffix: str
) -> None:
    owner = make_user()
    run_id = submit("trivial", owner_id=owner.pk, service=service)
    run_inline(service, run_id)
    for stranger in (browser(), browser(make_user())):
        assert error_of(stranger.get(f"{API}/runs/{run_id}{suffix}")) == not_found(run_id)
    assert browser(owner).get(f"{API}/runs/{run_id}{suffix}").status_code == 200
    assert browser(make_user(staff=True)).get(f"{API}/runs/{run_id}{suffix}").status_code == 200


def test_others_cannot_cancel_or_rerun_a_users_run(service: Service, site: None) -> None:
    owner = make_user()
    run_id = submit("trivial", owner_id=owner.pk, service=service)
    stranger = make_user()
    for action in ("cancel", "rerun"):
        response = browser().post(f"{API}/runs/{run_id}/{action}", headers=bearer(stranger))
        assert error_of(response) == not_found(run_id)
    assert get_run(run_id, service=service).state == RunState.QUEUED
    response = browser().post(f"{API}/runs/{run_id}/cancel", headers=bearer(owner))
    assert response.status_code == 202


def test_a_users_run_page_is_hidden_from_others(service: Service, site: None) -> None:
    owner = make_user()
    run_id = submit("trivial", owner_id=owner.pk, service=service)
    response = browser(make_user()).get(f"/runs/{run_id}/")
    assert response.status_code == 404
    assert page(response).texts("#error-message") == [f"No run with id '{run_id}'."]
    assert browser(owner).get(f"/runs/{run_id}/").status_code == 200


def test_only_staff_see_an_internal_errors_traceback(service: Service, site: None) -> None:
    owner = make_user()
    run_id = submit("internal", owner_id=owner.pk, service=service)
    run_inline(service, run_id)
    mine = browser(owner).get(f"{API}/runs/{run_id}").json()["error"]
    assert mine["traceback"] is None
    assert b"ZeroDivisionError" not in browser(owner).get(f"/runs/{run_id}/").content
    staff = browser(make_user(staff=True))
    assert (
        "ZeroDivisionError: division by zero"
        in staff.get(f"{API}/runs/{run_id}").json()["error"]["traceback"]
    )
    html = page(staff.get(f"/runs/{run_id}/"))
    assert "ZeroDivisionError: division by zero" in html.one("#run-traceback pre").text


# -- pipelines: anyone, signed-in users, staff ------------------------------------------------


def test_a_staff_only_pipeline_does_not_exist_for_others(service: Service, site: None) -> None:
    for client in (browser(), browser(make_user())):
        names = [p["name"] for p in client.get(f"{API}/pipelines").json()]
        assert "staff-only" not in names
        assert error_of(client.get(f"{API}/pipelines/staff-only")) == (
            404,
            "no pipeline named 'staff-only'",
        )
        assert error_of(api_submit(client, "staff-only")) == (
            404,
            "no pipeline named 'staff-only'",
        )
        assert client.get("/pipelines/staff-only/").status_code == 404
    staff = make_user(staff=True)
    assert api_submit(browser(), "staff-only", **bearer(staff)).status_code == 201
    assert browser(staff).get("/pipelines/staff-only/").status_code == 200


def test_a_superuser_only_pipeline_does_not_exist_for_anybody_else(
    service: Service, site: None
) -> None:
    for client in (browser(), browser(make_user()), browser(make_user(staff=True))):
        names = [p["name"] for p in client.get(f"{API}/pipelines").json()]
        assert "superusers-only" not in names
        assert error_of(api_submit(client, "superusers-only")) == (
            404,
            "no pipeline named 'superusers-only'",
        )
        assert client.get("/pipelines/superusers-only/").status_code == 404
    staff = make_user(staff=True)
    assert error_of(api_submit(browser(), "superusers-only", **bearer(staff)))[0] == 404
    root = make_user(superuser=True)
    assert api_submit(browser(), "superusers-only", **bearer(root)).status_code == 201
    assert browser(root).get("/pipelines/superusers-only/").status_code == 200


def test_a_pipeline_for_signed_in_users_asks_anonymous_callers_to_sign_in(
    service: Service, site: None
) -> None:
    assert error_of(api_submit(browser(), "members-only")) == (
        401,
        "sign in to use the pipeline 'members-only'; send an API token (Authorization: Bearer ...)",
    )
    response = browser().get("/pipelines/members-only/")
    assert response.status_code == 302
    assert response["Location"] == "/sign-in/?next=/pipelines/members-only/"
    member = make_user()
    assert api_submit(browser(), "members-only", **bearer(member)).status_code == 201
    assert browser(member).get("/pipelines/members-only/").status_code == 200


def test_a_form_submission_while_signed_in_makes_the_users_run(
    service: Service, site: None
) -> None:
    member = make_user()
    response = browser(member).post("/pipelines/members-only/", {})
    assert response.status_code == 303
    run_id = response["Location"].split("/")[2]
    assert get_run(run_id, service=service).run.owner_id == member.pk


# -- API credentials -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ("Bearer gm_not-a-real-key", "the API token is not valid (unknown or revoked)"),
        ("Bearer ", "the Authorization header must be 'Bearer <API token>'"),
        ("Basic dXNlcjpwYXNz", "the Authorization header must be 'Bearer <API token>'"),
    ],
)
def test_a_bad_authorization_header_is_refused(site: None, header: str, message: str) -> None:
    response = browser().get(f"{API}/pipelines", headers={"Authorization": header})
    assert error_of(response) == (401, message)


def test_a_token_of_an_inactive_user_is_refused(site: None) -> None:
    user = make_user()
    headers = bearer(user)
    user.is_active = False
    user.save()
    response = browser().get(f"{API}/pipelines", headers=headers)
    assert error_of(response) == (401, "the API token is not valid (unknown or revoked)")


def test_a_signed_in_browser_must_send_the_csrf_token_to_post(service: Service, site: None) -> None:
    client = browser(make_user(), enforce_csrf_checks=True)
    refused = api_submit(client, "trivial")
    assert refused.status_code == 403
    assert refused.json()["error"]["message"].startswith("the CSRF check failed")
    client.get("/pipelines/trivial/")  # the form page sets the csrftoken cookie
    token = client.cookies["csrftoken"].value
    assert api_submit(client, "trivial", **{"X-CSRFToken": token}).status_code == 201


def test_a_token_caller_needs_no_csrf_token(site: None) -> None:
    client = browser(enforce_csrf_checks=True)
    assert api_submit(client, "trivial", **bearer(make_user())).status_code == 201


# -- sign-in and the runs list --------------------------------------------------------------


def test_signing_in_with_a_password_leads_back_to_the_page_asked_for(site: None) -> None:
    user = make_user()
    client = browser()
    form = page(client.get("/sign-in/?next=/runs/"))
    assert form.one("#sign-in-next").attrs["value"] == "/runs/"
    data = {"username": user.username, "password": "correct horse", "next": "/runs/"}
    response = client.post("/sign-in/", data)
    assert (response.status_code, response["Location"]) == (302, "/runs/")
    assert client.get("/runs/").status_code == 200


def test_a_wrong_password_is_shown_on_the_form(site: None) -> None:
    user = make_user()
    response = browser().post("/sign-in/", {"username": user.username, "password": "wrong"})
    assert response.status_code == 200
    assert "correct username and password" in page(response).one("#form-errors").text


def test_the_runs_list_asks_anonymous_callers_to_sign_in(site: None) -> None:
    response = browser().get("/runs/")
    assert (response.status_code, response["Location"]) == (302, "/sign-in/?next=/runs/")


def test_a_user_lists_their_own_runs_and_staff_list_everyones(service: Service, site: None) -> None:
    alice, bob = make_user(), make_user()
    mine = submit("trivial", owner_id=alice.pk, service=service)
    theirs = submit("trivial", owner_id=bob.pk, service=service)
    anonymous = submit("trivial", service=service)

    def listed(client: Client, query: str = "") -> list[str]:
        html = page(client.get(f"/runs/{query}"))
        return [a.attrs["href"].split("/")[2] for a in html.select("#runs a")]

    assert listed(browser(alice)) == [mine]
    staff_view = listed(browser(make_user(staff=True)))
    assert staff_view.index(anonymous) < staff_view.index(theirs) < staff_view.index(mine)
    assert listed(browser(make_user(staff=True)), "?whose=mine") == []


def test_the_runs_list_filters_by_state(service: Service, site: None) -> None:
    user = make_user()
    done = submit("trivial", owner_id=user.pk, service=service)
    run_inline(service, done)
    waiting = submit("trivial", owner_id=user.pk, service=service)
    html = page(browser(user).get("/runs/?state=succeeded"))
    assert [a.attrs["href"] for a in html.select("#runs a")] == [f"/runs/{done}/"]
    html = page(browser(user).get("/runs/?state=queued&pipeline=trivial"))
    assert [a.attrs["href"] for a in html.select("#runs a")] == [f"/runs/{waiting}/"]
    assert page(browser(user).get("/runs/?state=failed")).one("#no-runs").text == (
        "No runs match these filters."
    )


# -- API tokens ------------------------------------------------------------------------------


def test_a_signed_in_user_makes_lists_and_revokes_tokens(site: None) -> None:
    user = make_user()
    client = browser(user)
    made = client.post(f"{API}/tokens", {"name": "laptop"}, content_type="application/json")
    assert made.status_code == 201
    key = made.json()["key"]
    assert key.startswith("gm_") and made.json()["prefix"] == key[:10]
    listed = client.get(f"{API}/tokens").json()
    assert [(t["name"], t["prefix"]) for t in listed] == [("laptop", key[:10])]
    assert "key" not in listed[0]
    as_token = browser().get(f"{API}/tokens", headers={"Authorization": f"Bearer {key}"})
    assert as_token.status_code == 200
    assert client.delete(f"{API}/tokens/{made.json()['id']}").status_code == 204
    refused = browser().get(f"{API}/tokens", headers={"Authorization": f"Bearer {key}"})
    assert error_of(refused) == (401, "the API token is not valid (unknown or revoked)")


def test_tokens_need_a_signed_in_caller_and_are_private(site: None) -> None:
    assert error_of(browser().get(f"{API}/tokens")) == (
        401,
        "sign in to manage API tokens; send an API token (Authorization: Bearer ...)",
    )
    owner = make_user()
    made = browser(owner).post(f"{API}/tokens", {"name": "x"}, content_type="application/json")
    token_id = made.json()["id"]
    stranger = browser(make_user())
    assert error_of(stranger.delete(f"{API}/tokens/{token_id}")) == (
        404,
        f"you have no API token with id {token_id}",
    )
    assert stranger.get(f"{API}/tokens").json() == []
